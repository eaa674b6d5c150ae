"""Cached access to immutable pipeline versions: parsed spec and DAG by version id."""

from __future__ import annotations

from collections import OrderedDict
from threading import Lock

from sqlalchemy import select
from sqlalchemy.orm import Session

from myapp.core.dag import Dag
from myapp.core.errors import NotFound
from myapp.core.model import PipelineSpec
from myapp.core.pipeline_spec import parse_pipeline
from myapp.db.tables import PipelineVersion


class VersionSpecs:
    """Parse each pipeline version once per process; versions never change after creation."""

    def __init__(self, size: int = 256) -> None:
        self._cache: OrderedDict[int, tuple[PipelineSpec, Dag]] = OrderedDict()
        self._size = size
        self._lock = Lock()

    def get(self, session: Session, version_id: int) -> tuple[PipelineSpec, Dag]:
        """Return (spec, dag) of the version, loading it through `session` on a miss."""
        with self._lock:
            hit = self._cache.get(version_id)
            if hit is not None:
                self._cache.move_to_end(version_id)
                return hit
        data = session.scalar(select(PipelineVersion.spec).where(PipelineVersion.id == version_id))
        if data is None:
            raise NotFound(f"pipeline version {version_id} not found")
        spec = parse_pipeline(data)
        entry = (spec, Dag.from_spec(spec))
        with self._lock:
            self._cache[version_id] = entry
            while len(self._cache) > self._size:
                self._cache.popitem(last=False)
        return entry
