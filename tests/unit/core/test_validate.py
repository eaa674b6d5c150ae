"""The one pipeline checker: every rule of docs/rules.md P2, all errors at once, near-linear."""

from __future__ import annotations

import pytest

from myapp.core.errors import SpecError
from myapp.core.model import AlertSpec, GlobalOutput, OutputSpec, PipelineSpec, Resources
from myapp.core.validate import validate_pipeline
from tests.factories import (
    from_param,
    from_task,
    literal,
    make_catalog,
    make_output,
    make_param,
    make_pipeline,
    make_schedule,
    make_task,
    make_template,
    make_template_task,
)
from tests.work import calls_made

CATALOG = make_catalog(make_template())


def errors_of(spec: PipelineSpec, **kwargs: object) -> dict[str, str]:
    return {e.field: e.message for e in validate_pipeline(spec, CATALOG, **kwargs)}  # type: ignore[arg-type]


def two_tasks() -> PipelineSpec:
    return make_pipeline(
        parameters=(make_param("day", default="{{ execution_date[:10] }}"),),
        outputs=(GlobalOutput("report", "load", "report"),),
        schedule=make_schedule("0 2 * * *", timezone="Asia/Shanghai"),
        tasks=[
            make_template_task("extract", outputs=(make_output("day"), make_output("raw", "/tmp/raw", "file"))),
            make_task(
                "load",
                depends_on=("extract",),
                command=("python", "-c", "x", "$day"),
                inputs=(
                    from_task("day", "extract.day"),
                    from_task("raw", "extract.raw"),
                    from_param("when", "day"),
                    literal("mode", "fast"),
                ),
                outputs=(make_output("report"),),
                env={"LOG_LEVEL": "info"},
            ),
        ],
    )


def test_a_valid_pipeline_has_no_errors() -> None:
    assert validate_pipeline(two_tasks(), CATALOG) == []


@pytest.mark.parametrize(
    ("spec", "field", "words"),
    [
        (make_pipeline(name="Daily_ETL"), "name", "a-z, 0-9"),
        (make_pipeline(name="x" * 64), "name", "1-63"),
        (make_pipeline(timeout=-1), "timeout", ">= 0"),
        (make_pipeline(tasks=[make_task("a"), make_task("a")]), "tasks[a]", "duplicate task"),
        (make_pipeline(tasks=[make_task("a b")]), "tasks[a b].name", "A-Z"),
        (make_pipeline(tasks=[make_task("params")]), "tasks[params].name", "reserved"),
        (make_pipeline(tasks=[make_task("a", depends_on=("ghost",))]), "tasks[a].depends_on", "unknown task 'ghost'"),
        (
            make_pipeline(tasks=[make_task("a", inputs=(from_task("x", "ghost.out"),))]),
            "tasks[a].inputs.x.from",
            "unknown task 'ghost'",
        ),
        (
            make_pipeline(tasks=[make_task("a"), make_task("b", inputs=(from_task("x", "a.nope"),))]),
            "tasks[b].inputs.x.from",
            "has no output 'nope'",
        ),
        (
            make_pipeline(tasks=[make_task("a", inputs=(from_param("x", "nope"),))]),
            "tasks[a].inputs.x.from",
            "unknown global parameter",
        ),
        (
            make_pipeline(tasks=[make_task("a", inputs=(literal("my-input", "1"),))]),
            "tasks[a].inputs.my-input",
            "environment variable name",
        ),
        (
            make_pipeline(tasks=[make_task("a", inputs=(literal("MYAPP_TOKEN", "1"),))]),
            "tasks[a].inputs.MYAPP_TOKEN",
            "reserved",
        ),
        (
            make_pipeline(tasks=[make_task("a", inputs=(literal("LD_PRELOAD", "1"),))]),
            "tasks[a].inputs.LD_PRELOAD",
            "change what runs",
        ),
        (make_pipeline(tasks=[make_task("a", inputs=(literal("PATH", "1"),))]), "tasks[a].inputs.PATH", "rename"),
        (make_pipeline(tasks=[make_task("a", env={"1X": "v"})]), "tasks[a].env.1X", "environment variable name"),
        (
            make_pipeline(tasks=[make_task("a", outputs=(make_output("o"), make_output("o")))]),
            "tasks[a].outputs[o]",
            "duplicate output",
        ),
        (
            make_pipeline(tasks=[make_task("a", outputs=(make_output("o", path=" "),))]),
            "tasks[a].outputs[o].path",
            "empty",
        ),
        (
            make_pipeline(tasks=[make_task("a", outputs=(OutputSpec("o", "/x", "blob"),))]),  # type: ignore[arg-type]
            "tasks[a].outputs[o].type",
            "text, file or files",
        ),
        (make_pipeline(tasks=[make_task("a", outputs=(make_output("a.b"),))]), "tasks[a].outputs[a.b].name", "A-Z"),
        (make_pipeline(tasks=[make_task("a", retries=101)]), "tasks[a].retries", "0..100"),
        (make_pipeline(tasks=[make_task("a", retries=-1)]), "tasks[a].retries", "0..100"),
        (make_pipeline(tasks=[make_task("a", timeout=-5)]), "tasks[a].timeout", ">= 0"),
        (make_pipeline(tasks=[make_task("a", retry_delay=-5)]), "tasks[a].retry_delay", ">= 0"),
        (make_pipeline(tasks=[make_task("a", resources=Resources(gpu=-1))]), "tasks[a].resources.gpu", ">= 0"),
        (make_pipeline(tasks=[make_task("a", image=None)]), "tasks[a].image", "image and a command"),
        (make_pipeline(tasks=[make_task("a", command=())]), "tasks[a].command", "image and a command"),
        (make_pipeline(tasks=[make_template_task("a", command=("x",))]), "tasks[a].command", "from the template"),
        (make_pipeline(tasks=[make_template_task("a", template="nope")]), "tasks[a].template", "unknown template"),
        (make_pipeline(tasks=[make_template_task("a", template="shell@9")]), "tasks[a].template", "unknown template"),
        (make_pipeline(tasks=[make_task("a", args={"x": 1})]), "tasks[a].args", "need a template"),
        (make_pipeline(schedule=make_schedule(expired_limit=-1)), "schedule.expired_limit", ">= 0"),
        (make_pipeline(schedule=make_schedule(max_active_runs=0)), "schedule.max_active_runs", ">= 1"),
        (make_pipeline(schedule=make_schedule(None, type="crontab")), "schedule.cron", "needs a cron"),
        (make_pipeline(schedule=make_schedule(timezone="Mars/Base")), "schedule.timezone", "IANA"),
        (make_pipeline(schedule=make_schedule(timezone="../../etc/passwd")), "schedule.timezone", "IANA"),
        (make_pipeline(parameters=(make_param("d"), make_param("d"))), "parameters[d]", "duplicate parameter"),
        (make_pipeline(parameters=(make_param("a-b"),)), "parameters[a-b].name", "identifier"),
        (make_pipeline(outputs=(GlobalOutput("r", "ghost", "x"),)), "outputs[r].from", "unknown task"),
        (make_pipeline(outputs=(GlobalOutput("r", "t1", "x"),)), "outputs[r].from", "has no output"),
        (make_pipeline(alerts=AlertSpec(on=("exploded",))), "alerts.on", "unknown event"),
        (make_pipeline(alerts=AlertSpec(webhooks=("file:///etc/passwd",))), "alerts.webhooks", "http"),
        (
            make_pipeline(tasks=[make_task("a", trigger_rule="one_success")]),
            "tasks[a].trigger_rule",
            "unknown trigger rule 'one_success'; use one of all_success, all_done",
        ),
        (
            make_pipeline(tasks=[make_task("a", trigger_rule="one_failed")]),
            "tasks[a].trigger_rule",
            "one_failed needs an upstream task",
        ),
        (
            make_pipeline(tasks=[make_task("a", trigger_rule="all_skipped")]),
            "tasks[a].trigger_rule",
            "all_skipped needs an upstream task",
        ),
        (make_pipeline(tasks=[make_task("a", when="params.go")]), "tasks[a].when", "must be a Jinja expression"),
        (make_pipeline(tasks=[make_task("a", when="{{ params.go == }}")]), "tasks[a].when", "syntax error"),
        (
            make_pipeline(tasks=[make_task("a", when="{{ tasks.ghost.outputs.x }}")]),
            "tasks[a].when",
            "unknown task 'ghost'",
        ),
        (
            make_pipeline(tasks=[make_task("a"), make_task("b", when="{{ tasks.a.outputs.x }}")]),
            "tasks[b].when",
            "task 'a' is not an upstream task of 'b': add it to depends_on",
        ),
    ],
)
def test_each_rule_names_its_field(spec: PipelineSpec, field: str, words: str) -> None:
    errors = errors_of(spec)
    assert field in errors, errors
    assert words in errors[field]


@pytest.mark.parametrize(
    ("task", "field", "words"),
    [
        (make_template_task("a", template="train", args={}), "tasks[a].args.epochs", "required parameter"),
        (make_template_task("a", template="train", args={"epochs": 0}), "tasks[a].args.epochs", "below the minimum"),
        (make_template_task("a", template="train", args={"epochs": "many"}), "tasks[a].args.epochs", "not an integer"),
        (
            make_template_task("a", template="train", args={"epochs": 1, "mode": "slow"}),
            "tasks[a].args.mode",
            "not one of fast, full",
        ),
        (
            make_template_task("a", template="train", args={"epochs": 1, "lr": 0.1}),
            "tasks[a].args.lr",
            "has no parameter 'lr'",
        ),
        (
            make_template_task("a", template="train@1", args={"epochs": 1}, inputs=(literal("mode", "x"),)),
            "tasks[a].inputs.mode",
            "not one of",
        ),
        (
            make_template_task("a", template="train", args={"epochs": 1}, inputs=(literal("epochs", "2"),)),
            "tasks[a].args.epochs",
            "also bound",
        ),
    ],
)
def test_args_match_the_template_parameters(task: object, field: str, words: str) -> None:
    errors = errors_of(make_pipeline(tasks=[task]))  # type: ignore[list-item]
    assert field in errors, errors
    assert words in errors[field]


def test_required_parameter_satisfied_by_binding_or_deferred_jinja() -> None:
    bound = make_template_task("a", template="train", args={}, inputs=(from_param("epochs"),))
    jinja = make_template_task("b", template="train", args={"epochs": "{{ params.epochs }}"})
    spec = make_pipeline(parameters=(make_param("epochs"),), tasks=[bound, jinja])
    assert validate_pipeline(spec, CATALOG) == []


def test_template_outputs_can_be_bound_and_the_task_may_override_image() -> None:
    tmpl = make_template("produce", outputs=(make_output("model", "/tmp/m", "file"),))
    catalog = make_catalog(tmpl)
    spec = make_pipeline(
        tasks=[
            make_template_task("p", template="produce", args={"epochs": 3}, image="trainer:2"),
            make_task("c", inputs=(from_task("m", "p.model"),)),
        ]
    )
    assert validate_pipeline(spec, catalog) == []


def test_cycle_message_shows_the_cycle() -> None:
    spec = make_pipeline(tasks=[make_task("a", depends_on=("b",)), make_task("b", depends_on=("a",))])
    errors = validate_pipeline(spec, CATALOG)
    assert [e.message for e in errors] == ["the graph has a cycle: a -> b -> a"]


def test_cycle_through_a_binding_and_reading_own_output() -> None:
    spec = make_pipeline(
        tasks=[
            make_task("a", inputs=(from_task("x", "b.out"),), outputs=(make_output(),)),
            make_task("b", depends_on=("a",), outputs=(make_output(),)),
            make_task("c", inputs=(from_task("x", "c.out"),), outputs=(make_output(),)),
        ]
    )
    messages = [str(e) for e in validate_pipeline(spec, CATALOG)]
    assert "tasks[c].inputs.x.from: a task cannot read its own output" in messages
    assert any("cycle" in m for m in messages)


def test_all_errors_are_returned_at_once() -> None:
    spec = make_pipeline(name="BAD", timeout=-1, tasks=[make_task("a", retries=-1, depends_on=("zz",))])
    fields = [e.field for e in validate_pipeline(spec, CATALOG)]
    assert fields == ["name", "timeout", "tasks[a].retries", "tasks[a].depends_on"]
    assert all(isinstance(e, SpecError) for e in validate_pipeline(spec, CATALOG))


def test_cron_check_is_injected_and_its_error_lands_on_schedule_cron() -> None:
    seen: list[tuple[str, str]] = []

    def cron_check(cron: str, timezone: str) -> None:
        seen.append((cron, timezone))
        raise ValueError("fires every 30 seconds, more often than cron_min_interval")

    spec = make_pipeline(schedule=make_schedule("* * * * * */30", timezone="UTC"))
    assert errors_of(spec, cron_check=cron_check) == {
        "schedule.cron": "fires every 30 seconds, more often than cron_min_interval"
    }
    assert seen == [("* * * * * */30", "UTC")]


def test_real_cron_module_plugs_in() -> None:
    from myapp.core.cron import validate_cron

    def cron_check(cron: str, timezone: str) -> None:
        validate_cron(cron)

    assert errors_of(make_pipeline(schedule=make_schedule("0 2 * * *")), cron_check=cron_check) == {}
    assert "schedule.cron" in errors_of(make_pipeline(schedule=make_schedule("0 25 * * *")), cron_check=cron_check)


def chain(n: int) -> PipelineSpec:
    tasks = [make_task("t0", outputs=(make_output(),))]
    tasks += [
        make_task(
            f"t{i}", depends_on=(f"t{i - 1}",), inputs=(from_task("x", f"t{i - 1}.out"),), outputs=(make_output(),)
        )
        for i in range(1, n)
    ]
    return make_pipeline(tasks=tasks)


def test_ten_thousand_task_chain_validates_in_linear_work() -> None:
    # Work, not time (a busy machine must not fail this): ten times the tasks, about ten times the
    # calls (68 per task today); a quadratic check would make it a hundred. Speed: benchmarks/bench_big_dag.py.
    small, small_calls = calls_made(validate_pipeline, chain(1_000), CATALOG)
    big, big_calls = calls_made(validate_pipeline, chain(10_000), CATALOG)
    assert small == [] and big == []
    assert big_calls <= 12 * small_calls


def test_more_than_ten_thousand_tasks_is_refused_at_once() -> None:
    spec = make_pipeline(tasks=[make_task(f"t{i}") for i in range(10_001)])
    assert [e.field for e in validate_pipeline(spec, CATALOG)] == ["tasks"]


def test_mutual_bindings_are_a_cycle_naming_both_tasks() -> None:
    spec = make_pipeline(
        tasks=[
            make_task("a", inputs=(from_task("x", "b.out"),), outputs=(make_output(),)),
            make_task("b", inputs=(from_task("x", "a.out"),), outputs=(make_output(),)),
        ]
    )
    errors = [str(e) for e in validate_pipeline(spec, CATALOG)]
    assert errors == [
        "tasks[a].inputs.x.from: the graph has a cycle: a -> b -> a "
        "(b's input x is bound to a.out; a's input x is bound to b.out)"
    ]


def test_every_trigger_rule_is_accepted_after_an_upstream() -> None:
    for rule in ("all_success", "all_done", "one_failed", "none_failed", "all_skipped"):
        spec = make_pipeline(tasks=[make_task("a"), make_task("b", depends_on=("a",), trigger_rule=rule)])
        assert errors_of(spec) == {}, rule


def test_a_condition_over_an_upstream_output_is_accepted() -> None:
    spec = make_pipeline(
        tasks=[make_task("a"), make_task("b", depends_on=("a",), when="{{ tasks.a.outputs.score | float > 0.9 }}")]
    )
    assert errors_of(spec) == {}
