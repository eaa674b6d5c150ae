"""rules P2: a `from: task.output` binding is an upstream, written into `depends_on` on save and export."""

from __future__ import annotations

from myapp.core.dag import Dag, with_implied_edges
from myapp.core.pipeline_spec import parse_pipeline, pipeline_to_dict, spec_hash
from tests.factories import from_param, from_task, make_output, make_param, make_pipeline, make_task


def test_implied_upstreams_follow_the_explicit_ones_in_binding_order_without_duplicates() -> None:
    spec = make_pipeline(
        parameters=(make_param("day"),),
        tasks=[
            make_task("a", outputs=(make_output(),)),
            make_task("b", outputs=(make_output(),)),
            make_task("c", outputs=(make_output(),)),
            make_task(
                "d",
                depends_on=("c", "a"),
                inputs=(
                    from_task("x", "b.out"),
                    from_param("day", "day"),
                    from_task("y", "a.out"),
                    from_task("z", "b.out"),
                ),
            ),
        ],
    )
    normal = with_implied_edges(spec)
    assert [t.depends_on for t in normal.tasks] == [(), (), (), ("c", "a", "b")]
    assert [t.inputs for t in normal.tasks] == [t.inputs for t in spec.tasks]
    assert Dag.from_spec(normal) == Dag.from_spec(spec)  # the same graph, now spelled out


def test_normalising_is_idempotent_and_survives_the_dict_round_trip() -> None:
    spec = make_pipeline(
        tasks=[
            make_task("step1", outputs=(make_output("x"),)),
            make_task("step2", inputs=(from_task("x", "step1.x"),)),
        ]
    )
    normal = with_implied_edges(spec)
    assert normal.tasks[1].depends_on == ("step1",)
    assert with_implied_edges(normal) == normal
    data = pipeline_to_dict(normal)
    assert data["tasks"][1]["depends_on"] == ["step1"]  # type: ignore[index]
    again = with_implied_edges(parse_pipeline(data))
    assert spec_hash(again) == spec_hash(normal)
    assert spec_hash(spec) != spec_hash(normal)  # why save normalises: the hash is of the stored form
