"""Steps, composition (sequence, parallel, DAG) and the pipeline YAML round trip."""

from __future__ import annotations

from pathlib import Path

import pytest

from myapp.core.pipeline_spec import parse_pipeline
from myapp.core.validate import validate_pipeline
from myapp.sdk import PythonOPTemplate, Step, Workflow
from myapp.yaml_io import load_yaml
from tests.factories import make_catalog
from tests.unit.sdk.ops import WriteFile, read_files, templated, total

REPO = Path(__file__).resolve().parents[3]


def hello(dag: bool = False) -> Workflow:
    wf = Workflow("hello", parameters={"greeting": "Hello", "times": 2}, dag=dag)
    write = Step(
        "write",
        PythonOPTemplate(WriteFile, image="python:3.8"),
        parameters={"msg": wf.parameters["greeting"], "number": 3},
    )
    read = Step(
        "read",
        PythonOPTemplate(read_files),
        artifacts={"files": write.outputs.artifacts["out_art"]},
        parameters={"length": write.outputs.parameters["length"]},
        retries=1,
    )
    wf.add(write)
    wf.add(read)
    return wf


def test_steps_become_python_tasks_with_typed_bindings_and_outputs() -> None:
    spec = hello().to_spec()
    write, read = spec.tasks
    assert (write.template, write.image, read.image) == ("python", "python:3.8", "python:3.12-slim")
    assert {b.name: (b.source, b.param or b.value) for b in write.inputs} == {
        "msg": ("param", "greeting"),
        "number": ("literal", "3"),
    }
    assert {b.name: (b.source, b.task, b.output, b.value) for b in read.inputs} == {
        "files": ("task", "write", "out_art", None),
        "length": ("task", "write", "length", None),
        "scale": ("literal", None, None, "2.0"),
    }  # a default is written out: the editor's form shows it
    assert [(o.name, o.path, o.type) for o in write.outputs] == [
        ("out_art", "outputs/artifacts/out_art", "files"),
        ("length", "outputs/parameters/length", "text"),
    ]
    assert read.retries == 1 and read.depends_on == ("write",)
    assert [(p.name, p.default) for p in spec.parameters] == [("greeting", "Hello"), ("times", "2")]


def test_the_yaml_is_a_valid_pipeline_for_the_product() -> None:
    text = hello().to_yaml()
    spec = parse_pipeline(load_yaml(text))  # type: ignore[arg-type]
    assert validate_pipeline(spec, make_catalog()) == []


def test_the_yaml_round_trips() -> None:
    wf = hello()
    back = Workflow.from_yaml(wf.to_yaml())
    assert back == wf and back.to_yaml() == wf.to_yaml()
    assert [type(s.template).__name__ for s in back.steps] == ["PythonOPTemplate", "PythonOPTemplate"]
    assert back.step("read").template.signature == wf.step("read").template.signature  # type: ignore[union-attr]
    # Read back, the workflow still binds by name and checks types.
    with pytest.raises(KeyError, match="artifact, not a parameter"):
        back.step("write").outputs.parameters["out_art"]


def test_a_pipeline_not_written_by_the_sdk_round_trips_as_it_is() -> None:
    text = (REPO / "templates" / "parameter-passing.yaml").read_text()
    spec = parse_pipeline(load_yaml(text))  # type: ignore[arg-type]
    wf = Workflow.from_yaml(text)
    assert wf.to_spec() == spec and all(s.template is None for s in wf.steps)


def test_a_hand_edited_sdk_task_is_kept_as_written() -> None:
    text = hello().to_yaml().replace("retries: 1", "retries: 1\n  retry_delay: 30")
    back = Workflow.from_yaml(text)
    assert back.to_spec() == parse_pipeline(load_yaml(text))  # type: ignore[arg-type]
    assert back.step("read").template is None and back.step("write").template is not None


def test_a_node_moved_in_the_editor_is_still_an_op() -> None:
    text = hello().to_yaml().replace("retries: 1", "retries: 1\n  timeout: 30\n  position: [10, 20]")
    text = text.replace("template: python\n", "template: python@1\n")  # pinned when saved
    back = Workflow.from_yaml(text)
    assert back.to_spec() == parse_pipeline(load_yaml(text))  # type: ignore[arg-type]
    read = back.step("read")
    assert read.template is not None and read.position == (10.0, 20.0) and read.timeout == 30


def test_sequence_parallel_and_dag_composition() -> None:
    a, b, c = (Step(n, PythonOPTemplate(total), parameters={"items": [1]}) for n in "abc")
    d = Step("d", PythonOPTemplate(total), parameters={"items": [2]}, dependencies=[a])
    seq = Workflow("seq").add(a).add([b, c]).add(d)
    assert {t.name: t.depends_on for t in seq.to_spec().tasks} == {
        "a": (),
        "b": ("a",),
        "c": ("a",),
        "d": ("a", "b", "c"),
    }
    dag = Workflow("dag", dag=True).add([a, b, c, d])
    assert {t.name: t.depends_on for t in dag.to_spec().tasks} == {"a": (), "b": (), "c": (), "d": ("a",)}
    e = Step("e", PythonOPTemplate(templated), parameters={"text": b.outputs.parameters["total"]}, dependencies=["c"])
    assert Workflow("dag2", dag=True).add([b, c, e]).to_spec().task("e").depends_on == ("c", "b")
    # In a DAG, a binding is the edge (the product implies it; written out, the editor draws it).
    assert hello(dag=True).to_spec().task("read").depends_on == ("write",)
    assert validate_pipeline(hello(dag=True).to_spec(), make_catalog()) == []


def test_bindings_are_checked_when_the_step_is_made() -> None:
    write = Step("write", PythonOPTemplate(WriteFile), parameters={"msg": "x", "number": 1})
    template = PythonOPTemplate(read_files)
    cases = [
        (lambda: Step("s", PythonOPTemplate(WriteFile), parameters={"msg": "x"}), "'number' .* has no value"),
        (lambda: Step("s", PythonOPTemplate(WriteFile), parameters={"msg": "x", "number": "3"}), "expected int"),
        (lambda: Step("s", PythonOPTemplate(WriteFile), parameters={"msg": "x", "number": 1, "n": 2}), "no input 'n'"),
        (
            lambda: Step("s", template, parameters={"files": write.outputs.artifacts["out_art"], "length": 1}),
            "is an artifact: pass it in artifacts=",
        ),
        (
            lambda: Step(
                "s",
                template,
                artifacts={"files": write.outputs.artifacts["out_art"]},
                parameters={"length": write.outputs.parameters["length"], "scale": "big"},
            ),
            "expected float",
        ),
        (
            lambda: Step("s", PythonOPTemplate(templated), parameters={"text": write.outputs.artifacts["out_art"]}),
            "is a parameter, but write.out_art is an artifact",
        ),
    ]
    for make, message in cases:
        with pytest.raises(TypeError, match=message):
            make()
    with pytest.raises(KeyError, match="no parameter output 'nope'"):
        write.outputs.parameters["nope"]
    with pytest.raises(ValueError, match="already has a step"):
        Workflow("w").add(write).add(write)


def test_a_template_image_of_none_is_the_python_templates_own() -> None:
    wf = Workflow("img").add(Step("s", PythonOPTemplate(total, image=None), parameters={"items": [1]}))
    assert wf.to_spec().task("s").image is None
    back = Workflow.from_yaml(wf.to_yaml())
    assert back == wf and back.step("s").template is not None


def test_a_step_takes_a_trigger_rule_and_a_condition_and_they_round_trip() -> None:
    wf = hello()
    cleanup = Step(
        "cleanup",
        PythonOPTemplate(total),
        parameters={"items": [1], "flag": True},
        dependencies=[wf.step("read")],
        trigger_rule="all_done",
        when="{{ params.greeting != '' }}",
    )
    wf.add(cleanup)
    task = wf.to_spec().task("cleanup")
    assert (task.trigger_rule, task.when, task.depends_on) == ("all_done", "{{ params.greeting != '' }}", ("read",))
    assert "trigger_rule: all_done" in wf.to_yaml()
    back = Workflow.from_yaml(wf.to_yaml())
    assert back.step("cleanup").template is not None and back.to_spec() == wf.to_spec()
    assert validate_pipeline(wf.to_spec(), make_catalog()) == []


def sweep_workflow() -> Workflow:
    from myapp.sdk import Slices
    from tests.unit.sdk.ops import pick, square

    wf = Workflow("sdk-sweep", parameters={"xs": [1.0, 2.0]})
    train = Step(
        "train",
        PythonOPTemplate(square),
        parameters={"x": [1.5, 2, 3], "tag": "s"},
        slices=Slices(input_parameter=["x"], output_parameter=["y"], pool_size=2),
        continue_on_success_ratio=0.5,
    )
    best = Step(
        "best",
        PythonOPTemplate(pick),
        parameters={"ys": train.outputs.parameters["y"]},
        artifacts={"arts": train.outputs.artifacts["art"]},
    )
    return wf.add(train).add(best)


def test_a_sliced_step_writes_a_slices_block_and_round_trips() -> None:
    wf = sweep_workflow()
    task = next(t for t in wf.to_dict()["tasks"] if t["name"] == "train")  # type: ignore[union-attr]
    assert task["slices"] == {"inputs": ["x"], "parallelism": 2, "success_ratio": 0.5}
    assert task["inputs"]["x"] == "[1.5, 2, 3]"
    assert validate_pipeline(wf.to_spec(), make_catalog()) == []
    again = Workflow.from_yaml(wf.to_yaml())
    assert again == wf and again.step("train").slices is not None


def test_a_sliced_input_takes_a_list_of_values_of_its_type() -> None:
    from myapp.sdk import Slices
    from tests.unit.sdk.ops import square

    with pytest.raises(TypeError, match="give a list"):
        Step("t", PythonOPTemplate(square), parameters={"x": 1.0}, slices=Slices(input_parameter=["x"]))
    with pytest.raises(TypeError, match="expected float"):
        Step("t", PythonOPTemplate(square), parameters={"x": ["a"]}, slices=Slices(input_parameter=["x"]))
    with pytest.raises(TypeError, match="no output 'z'"):
        Step("t", PythonOPTemplate(square), parameters={"x": [1]}, slices=Slices(["x"], output_parameter=["z"]))


def files_workflow() -> Workflow:
    from myapp.sdk import Slices
    from tests.unit.sdk.ops import count, names, split

    wf = Workflow("shards", dag=True)
    make = Step("split", PythonOPTemplate(split), parameters={"n": 3})
    each = Step(
        "count",
        PythonOPTemplate(count),
        artifacts={"shard": make.outputs.artifacts["shards"]},
        slices=Slices(input_artifact=["shard"], pool_size=2),
    )
    whole = Step("names", PythonOPTemplate(names), artifacts={"shards": make.outputs.artifacts["shards"]})
    return wf.add(make).add(each).add(whole)


def test_a_list_of_paths_output_is_a_files_output_a_step_slices_over() -> None:
    wf = files_workflow()
    spec = wf.to_spec()
    assert [(o.name, o.type) for o in spec.task("split").outputs] == [("shards", "files")]
    assert spec.task("count").slices is not None and spec.task("count").slices.inputs == ("shard",)  # type: ignore[union-attr]
    assert validate_pipeline(spec, make_catalog()) == []
    assert Workflow.from_yaml(wf.to_yaml()) == wf


def test_slicing_over_one_path_is_refused_when_the_step_is_made() -> None:
    from myapp.sdk import Slices
    from tests.unit.sdk.ops import count, square

    one = Step("one", PythonOPTemplate(square), parameters={"x": 2.0})
    with pytest.raises(
        TypeError, match=r"one\.art is one path, not a list: declare that output Artifact\(List\[Path\]\)"
    ):
        Step(
            "c",
            PythonOPTemplate(count),
            artifacts={"shard": one.outputs.artifacts["art"]},
            slices=Slices(input_artifact=["shard"]),
        )


def test_a_document_written_before_files_outputs_still_reads_back_as_its_op() -> None:
    text = hello().to_yaml()
    old = text.replace("type: files", "type: file")
    assert old != text
    back = Workflow.from_yaml(old)
    assert back.step("write").template is not None
    assert back.to_yaml() == text  # submitted again, it is written the way it is now
