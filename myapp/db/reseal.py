"""Re-seal every stored secret with the first key (`myapp secrets rotate`; docs/security.md §5).

Opens what was sealed with any configured key, seals it with the first, and seals the secrets of
rows written before secrets were sealed. Versions keep their hash: it is taken over the plain
definition. One transaction per batch of rows; safe to run again or while the server runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update

from myapp.core.model import PipelineSpec
from myapp.core.pipeline_spec import parse_pipeline
from myapp.core.ports import TemplateCatalog
from myapp.core.secrets import map_pipeline_secrets, map_run_params
from myapp.db.sealed import KEYRING, open_tree
from myapp.db.session import Database
from myapp.db.tables import PipelineVersion, Run, TaskTemplate
from myapp.db.template_review import seal_template_defaults

BATCH = 500


@dataclass(frozen=True)
class ResealCount:
    versions: int
    runs: int
    templates: int


def reseal_all(db: Database, catalog: TemplateCatalog) -> ResealCount:
    """Re-seal the secrets of every pipeline version, run and user template; return how many rows changed."""
    versions = runs = templates = 0
    with db.write() as s:
        for row in s.scalars(select(TaskTemplate).where(TaskTemplate.source == "user")):
            new = seal_template_defaults(dict(row.spec), KEYRING.reseal)
            if new != row.spec:
                row.spec = new
                templates += 1
    last = 0
    specs: dict[int, PipelineSpec] = {}
    while True:
        with db.write() as s:
            rows = s.execute(
                select(PipelineVersion.id, PipelineVersion.spec)
                .where(PipelineVersion.id > last)
                .order_by(PipelineVersion.id)
                .limit(BATCH)
            ).all()
            for version_id, spec in rows:
                sealed = map_pipeline_secrets(spec, catalog.get, KEYRING.reseal)
                parsed = parse_pipeline(spec)
                if any(p.secret for p in parsed.parameters):  # only these have secret run parameters
                    specs[version_id] = parsed
                if sealed != spec:
                    s.execute(update(PipelineVersion).where(PipelineVersion.id == version_id).values(spec=sealed))
                    versions += 1
        if len(rows) < BATCH:
            break
        last = rows[-1][0]
    last = 0
    while True:
        with db.write() as s:
            rows = s.execute(
                select(Run.id, Run.version_id, Run.params).where(Run.id > last).order_by(Run.id).limit(BATCH)
            ).all()
            for run_id, version_id, params in rows:
                spec = specs.get(version_id)
                if not params or spec is None:
                    continue
                sealed = map_run_params(open_tree(dict(params)), spec, KEYRING.reseal)
                if sealed != params:
                    s.execute(update(Run).where(Run.id == run_id).values(params=sealed))
                    runs += 1
        if len(rows) < BATCH:
            break
        last = rows[-1][0]
    return ResealCount(versions, runs, templates)
