"""rules P2 through the database: binding-implied upstreams are stored in `depends_on`, and a version
saved before that rule neither loses them on export nor gets a spurious new version when re-saved."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest
from sqlalchemy import select

from myapp.core.pipeline_spec import canonical_hash, parse_pipeline
from myapp.db.tables import Pipeline, PipelineVersion
from myapp.yaml_io import load_yaml

pytestmark = pytest.mark.integration

BOUND = """
    name: {name}
    parameters: [{{name: who, default: world}}]
    tasks:
      - {{name: step1, template: shell, args: {{script: 'echo hi > /tmp/x.txt'}}, outputs: [{{name: x, path: /tmp/x.txt}}]}}
      - name: step2
        template: shell
        args: {{script: 'echo "$x $who"'}}
        inputs: {{x: {{from: step1.x}}, who: {{from: params.who}}}}
"""


def spec_of(name: str, **edits: str) -> Any:
    text = textwrap.dedent(BOUND.format(name=name))
    for old, new in edits.items():
        text = text.replace(old, new)
    return parse_pipeline(load_yaml(text))


def test_save_stores_implied_upstreams_and_resaving_the_export_changes_nothing(services: Any) -> None:
    first = services.pipelines.save(spec_of("implied-store"), services.clock.now())
    stored, _ = services.pipelines.spec(first.pipeline_id)
    assert [t.depends_on for t in stored.tasks] == [(), ("step1",)]
    exported = services.pipelines.export(first.pipeline_id)
    again = services.pipelines.save(parse_pipeline(exported), services.clock.now())
    assert (again.version, again.created_version) == (first.version, False)


def test_a_version_saved_before_implied_edges_is_exported_with_them_and_not_resaved(services: Any) -> None:
    first = services.pipelines.save(spec_of("implied-legacy"), services.clock.now())
    with services.db.write() as s:  # make it look like a version saved before rules P2 wrote implied edges
        row = s.scalar(
            select(PipelineVersion)
            .join(Pipeline, Pipeline.current_version_id == PipelineVersion.id)
            .where(Pipeline.id == first.pipeline_id)
        )
        legacy = dict(row.spec)
        legacy["tasks"] = [{k: v for k, v in t.items() if k != "depends_on"} for t in row.spec["tasks"]]
        row.spec, row.spec_hash = legacy, canonical_hash(legacy)
    assert services.pipelines.spec(first.pipeline_id)[0].tasks[1].depends_on == ()
    assert services.pipelines.export(first.pipeline_id)["tasks"][1]["depends_on"] == ["step1"]
    same = services.pipelines.save(spec_of("implied-legacy"), services.clock.now())
    assert (same.version, same.created_version) == (first.version, False)
    changed = services.pipelines.save(spec_of("implied-legacy", **{"echo hi": "echo bye"}), services.clock.now())
    assert (changed.version, changed.created_version) == (first.version + 1, True)
