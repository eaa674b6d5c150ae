"""The `k8s-resource` built-in and `kind: resource` templates: the manifest rendered as pure data."""

from __future__ import annotations

import json

import pytest

from myapp.builtins.conditions import Requirement, holds, parse_condition
from myapp.builtins.k8s_resource import check_resource_template, main, manifest_problem, render_resource
from myapp.catalog.plugins import TemplateError, parse_template, template_to_dict
from myapp.core.errors import RenderError
from myapp.core.model import ParamDef, TaskSpec, TemplateSpec
from tests.factories import literal, make_catalog, make_context

BUILTIN = make_catalog().get("k8s-resource")
CTX = make_context(params={"day": "2026-01-02"})
TRAINING_JOB = """\
apiVersion: batch.tensorstack.dev/v1beta1
kind: TensorFlowTrainingJob
metadata:
  name: $(params.trainingjob_name)
  labels: {day: "{{ params.day }}", run: "run-{{ run_id }}"}
spec:
  replicaSpecs:
    - type: worker
      replicas: $(params.replicas)
      template:
        spec:
          containers:
            - name: tensorflow
              image: tensorflow/tensorflow:2.8.0
              command: [sh, -c, "python train.py --run $(params.trainingjob_name) --x $HOME"]
          volumes:
            - name: data
              persistentVolumeClaim: {claimName: $(params.pvc_name)}
"""


def builtin_task(**args: object) -> TaskSpec:
    return TaskSpec(name="train", template="k8s-resource", args={"manifest": TRAINING_JOB, **args})


def test_builtin_renders_params_and_jinja_into_the_manifest() -> None:
    assert BUILTIN is not None and BUILTIN.kind == "resource"
    task = builtin_task(
        params={"trainingjob_name": "mnist-{{ run_id }}", "pvc_name": "mnist", "replicas": 4},
        success_condition="status.phase == Succeeded",
        failure_condition="status.phase == Failed",
        timeout=600,
    )
    plan = render_resource(task, BUILTIN, CTX, {})
    meta, spec = plan.manifest["metadata"], plan.manifest["spec"]
    assert meta == {"name": "mnist-7", "labels": {"day": "2026-01-02", "run": "run-7"}}  # type: ignore[comparison-overlap]
    worker = spec["replicaSpecs"][0]  # type: ignore[index]
    assert worker["replicas"] == 4  # a whole $(params.x) keeps the value's type
    container = worker["template"]["spec"]["containers"][0]
    assert container["command"][2] == "python train.py --run mnist-7 --x $HOME"  # $HOME stays for the shell
    assert worker["template"]["spec"]["volumes"][0]["persistentVolumeClaim"] == {"claimName": "mnist"}
    assert plan.success == (Requirement("status.phase", "==", "Succeeded"),)
    assert plan.failure == (Requirement("status.phase", "==", "Failed"),) and plan.timeout == 600


def test_values_never_change_the_manifest_structure() -> None:
    hostile = 'x\nspec: {hostPID: true}\n  privileged: true "}'
    data = json.dumps({"trainingjob_name": hostile, "pvc_name": "{{ 7*7 }}", "replicas": 1})
    task = TaskSpec(
        name="train", template="k8s-resource", args={"manifest": TRAINING_JOB}, inputs=(literal("params", "{}"),)
    )
    manifest = render_resource(task, BUILTIN, CTX, {"params": data}).manifest  # an input is data
    assert manifest["metadata"]["name"] == hostile  # type: ignore[index]
    assert list(manifest) == ["apiVersion", "kind", "metadata", "spec"] and list(manifest["spec"]) == ["replicaSpecs"]
    container = manifest["spec"]["replicaSpecs"][0]["template"]["spec"]["containers"][0]  # type: ignore[index]
    assert container["command"][2] == f"python train.py --run {hostile} --x $HOME"
    claim = manifest["spec"]["replicaSpecs"][0]["template"]["spec"]["volumes"][0]  # type: ignore[index]
    assert claim["persistentVolumeClaim"]["claimName"] == "{{ 7*7 }}"  # data is never rendered


def test_a_missing_value_names_the_task_and_field() -> None:
    with pytest.raises(RenderError) as err:
        render_resource(builtin_task(params={"pvc_name": "p", "replicas": 1}), BUILTIN, CTX, {})
    assert err.value.task == "train" and err.value.field == "args.manifest.metadata.name"
    assert "$(params.trainingjob_name) has no value" in str(err.value)


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        ("kind: Job\nmetadata: {name: x}\n", "needs apiVersion"),
        ("apiVersion: v1\nkind: Pod\n", "metadata.name"),
        ("- a\n- b\n", "one mapping"),
        ("apiVersion: v1\nkind: [\n", "invalid YAML"),
    ],
)
def test_bad_manifests_fail_the_task_before_anything_starts(manifest: str, message: str) -> None:
    with pytest.raises(RenderError, match="manifest") as err:
        render_resource(TaskSpec(name="t", template="k8s-resource", args={"manifest": manifest}), BUILTIN, CTX, {})
    assert message in str(err.value)


def test_jinja_in_the_manifest_is_sandboxed() -> None:
    manifest = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: \"{{ ''.__class__.__mro__ }}\"}\n"
    with pytest.raises(RenderError) as err:
        render_resource(TaskSpec(name="t", template="k8s-resource", args={"manifest": manifest}), BUILTIN, CTX, {})
    assert err.value.field == "args.manifest.metadata.name"


def test_inputs_reach_the_manifest_through_jinja_and_a_bound_manifest() -> None:
    task = TaskSpec(name="t", template="k8s-resource", inputs=(literal("manifest", "x"), literal("tag", "v1")))
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\ndata: {tag: '{{ inputs.parameters.tag }}'}\n"
    plan = render_resource(task, BUILTIN, CTX, {"manifest": text, "tag": "v1"})
    assert plan.manifest["data"] == {"tag": "v1"} and plan.success == () and plan.timeout == 0


USER_RESOURCE = {
    "name": "tf-job",
    "kind": "resource",
    "image": "unused",
    "parameters": {
        "trainingjob_name": {"type": "string", "required": True},
        "pvc_name": {"type": "string", "default": "mnist"},
        "replicas": {"type": "integer", "default": 2, "minimum": 1},
    },
    "extra": {"manifest": TRAINING_JOB, "success_condition": "status.phase == Succeeded"},
}


def test_a_user_resource_template_uses_its_declared_parameters() -> None:
    template = parse_template(USER_RESOURCE)
    task = TaskSpec(name="job", template="tf-job", args={"trainingjob_name": "run-{{ run_id }}", "replicas": "3"})
    plan = render_resource(task, template, CTX, {})
    assert plan.manifest["metadata"]["name"] == "run-7"  # type: ignore[index]
    assert plan.manifest["spec"]["replicaSpecs"][0]["replicas"] == 3  # type: ignore[index]
    assert plan.success == (Requirement("status.phase", "==", "Succeeded"),)
    with pytest.raises(RenderError, match="below the minimum"):
        render_resource(
            TaskSpec(name="job", template="tf-job", args={"trainingjob_name": "a", "replicas": 0}), template, CTX, {}
        )


@pytest.mark.parametrize(
    ("extra", "parameters", "message"),
    [
        ({}, {}, "needs extra.manifest or a `manifest` parameter"),
        ({"manifest": "apiVersion: v1\nkind: Pod\nmetadata: {name: $(params.nope)}\n"}, {}, "unknown parameter 'nope'"),
        ({"manifest": "kind: Pod\n"}, {}, "needs apiVersion"),
        (
            {"manifest": "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n", "success_condition": "status.phase ~ x"},
            {},
            "not PATH OP VALUE",
        ),
    ],
)
def test_resource_templates_are_checked_when_registered(
    extra: dict[str, object], parameters: dict[str, object], message: str
) -> None:
    data = {"name": "bad", "kind": "resource", "parameters": parameters, "extra": extra}
    with pytest.raises(TemplateError, match=message) as err:
        parse_template(data, "bad.yaml")
    assert err.value.field.startswith("extra.")


def test_the_builtin_template_is_valid_and_round_trips() -> None:
    assert BUILTIN is not None and check_resource_template(BUILTIN) == []
    assert parse_template(template_to_dict(BUILTIN)) == BUILTIN
    assert manifest_problem({"apiVersion": "v1", "kind": "Pod", "metadata": {"generateName": "p-"}}) == ""


def test_conditions() -> None:
    job = {
        "status": {"succeeded": 1, "failed": "0", "conditions": [{"type": "Complete", "status": "True"}], "ready": True}
    }
    assert holds(parse_condition("status.succeeded > 0"), job)
    assert holds(parse_condition("status.succeeded >= 1, status.conditions[0].type == Complete"), job)
    assert holds(parse_condition("status.failed = 0, status.ready == true"), job)
    assert not holds(parse_condition("status.failed > 3"), job)
    assert not holds(parse_condition("status.conditions[3].type == Complete"), job)
    assert not holds(parse_condition("status.phase != Failed"), job)  # missing never holds
    assert not holds(parse_condition("status.conditions[0].type > 2"), job)
    assert not holds((), job)
    with pytest.raises(ValueError):
        parse_condition("status.phase")


def test_running_it_locally_explains_the_executor(capsys: pytest.CaptureFixture[str]) -> None:
    assert main() == 2
    assert "kubernetes executor" in capsys.readouterr().err


def test_template_definition_is_unchanged_by_rendering() -> None:
    template = TemplateSpec(name="x", kind="resource", parameters=(ParamDef("manifest", type="text"),))
    assert check_resource_template(template) == []
