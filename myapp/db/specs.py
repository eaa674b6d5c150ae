"""Cached access to immutable pipeline versions: parsed spec and DAG by version id."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
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

    # Room for every version a large scheduler launches from (a one-task version takes ~1.3 KB parsed):
    # a pass over 10,000 due pipelines must not parse 10,000 specs again (~60 us each).
    def __init__(self, size: int = 16384) -> None:
        self._cache: OrderedDict[int, tuple[PipelineSpec, Dag]] = OrderedDict()
        self._size = size
        self._lock = Lock()

    def cached(self, version_id: int) -> tuple[PipelineSpec, Dag] | None:
        """Return (spec, dag) of the version if this process has it, else None (no database access)."""
        with self._lock:
            return self._cache.get(version_id)

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

    def get_many(self, session: Session, version_ids: Iterable[int]) -> dict[int, tuple[PipelineSpec, Dag]]:
        """Return (spec, dag) of each version that exists, loading those not cached in one query."""
        wanted = set(version_ids)
        found: dict[int, tuple[PipelineSpec, Dag]] = {}
        with self._lock:
            for version_id in wanted:
                hit = self._cache.get(version_id)
                if hit is not None:
                    self._cache.move_to_end(version_id)
                    found[version_id] = hit
        missing = sorted(wanted - found.keys())
        if not missing:
            return found
        loaded: dict[int, tuple[PipelineSpec, Dag]] = {}
        for version_id, data in session.execute(
            select(PipelineVersion.id, PipelineVersion.spec).where(PipelineVersion.id.in_(missing))
        ):
            spec = parse_pipeline(data)
            loaded[version_id] = (spec, Dag.from_spec(spec))
        with self._lock:
            self._cache.update(loaded)
            while len(self._cache) > self._size:
                self._cache.popitem(last=False)
        return found | loaded
