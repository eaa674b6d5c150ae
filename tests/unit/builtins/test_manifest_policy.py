"""What a resource manifest may ask of the cluster (myapp/builtins/manifest_policy.py), on save and at render."""

from __future__ import annotations

import pytest

from myapp.builtins.k8s_resource import check_resource_template, check_task_manifest, render_resource
from myapp.builtins.manifest_policy import ManifestPolicy, manifest_problems
from myapp.core.errors import RenderError
from myapp.core.model import TaskSpec
from myapp.yaml_io import load_yaml
from tests.factories import make_catalog, make_context

POLICY = ManifestPolicy(namespace="myapp", service_account="myapp-task", claim="workflow-space", subpath="ml")
BUILTIN = make_catalog().get("k8s-resource")
POD = """\
apiVersion: v1
kind: Pod
metadata: {name: "sneaky-{{ run_id }}"}
spec:
  serviceAccountName: myapp
  hostNetwork: true
  containers:
    - name: c
      image: busybox
      securityContext: {privileged: true}
      volumeMounts: [{name: space, mountPath: /w, subPath: other-project}]
  volumes:
    - {name: home, persistentVolumeClaim: {claimName: myapp-home}}
    - {name: node, hostPath: {path: /}}
    - {name: space, persistentVolumeClaim: {claimName: workflow-space}}
    - {name: scratch, emptyDir: {}}
"""


def test_every_borrowed_right_is_named_by_its_field() -> None:
    problems = dict(manifest_problems(load_yaml(POD), POLICY))
    assert set(problems) == {
        "manifest.spec.serviceAccountName",
        "manifest.spec.hostNetwork",
        "manifest.spec.volumes[0]",
        "manifest.spec.volumes[1]",
        "manifest.spec.containers[0].securityContext.privileged",
        "manifest.spec.containers[0].volumeMounts[0].subPath",
    }
    assert "may not name service account 'myapp'" in problems["manifest.spec.serviceAccountName"]
    assert "claim 'myapp-home' is not the task's own" in problems["manifest.spec.volumes[0]"]
    assert "hostPath is not allowed" in problems["manifest.spec.volumes[1]"]


def test_pod_templates_deep_inside_any_object_are_checked() -> None:
    job = {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "metadata": {"name": "j", "namespace": "kube-system"},
        "spec": {
            "pytorchReplicaSpecs": {
                "Worker": {
                    "template": {
                        "spec": {
                            "hostPID": True,
                            "containers": [
                                {"name": "w", "image": "x", "securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}}
                            ],
                        }
                    }
                }
            }
        },
    }
    fields = [f for f, _ in manifest_problems(job, POLICY)]
    assert fields == [
        "manifest.metadata.namespace",
        "manifest.spec.pytorchReplicaSpecs.Worker.template.spec.hostPID",
        "manifest.spec.pytorchReplicaSpecs.Worker.template.spec.containers[0].securityContext.capabilities.add",
    ]
    fine = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "ok"},
        "spec": {
            "serviceAccountName": "myapp-task",
            "containers": [
                {
                    "name": "c",
                    "image": "x",
                    "volumeMounts": [{"name": "space", "mountPath": "/w", "subPath": "ml/run-1"}],
                }
            ],
            "volumes": [
                {"name": "space", "persistentVolumeClaim": {"claimName": "workflow-space"}},
                {"name": "tmp", "emptyDir": {}},
            ],
        },
    }
    assert manifest_problems(fine, POLICY) == []


def test_refused_when_a_pipeline_or_a_template_is_saved() -> None:
    assert BUILTIN is not None
    errors = check_task_manifest(
        TaskSpec(name="apply", template="k8s-resource", args={"manifest": POD}), BUILTIN, POLICY
    )
    assert "tasks[apply].args.manifest.spec.hostNetwork" in [e.field for e in errors]
    from dataclasses import replace

    template = replace(BUILTIN, name="pod-maker", extra={"manifest": POD})
    parsed = [e.field for e in check_resource_template(template)]
    assert "extra.manifest.spec.volumes[1]" in parsed and "extra.manifest.spec.hostNetwork" in parsed
    assert not any("serviceAccountName" in f for f in parsed), "the service account is known only with settings"


def test_refused_at_render_time_when_jinja_produces_it() -> None:
    assert BUILTIN is not None
    manifest = (
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n"
        "spec: {serviceAccountName: \"{{ 'my' ~ 'app' }}\", containers: [{name: c, image: x}]}\n"
    )
    task = TaskSpec(name="apply", template="k8s-resource", args={"manifest": manifest})
    assert check_task_manifest(task, BUILTIN, POLICY) == [], "not literal on save: rendering decides"
    with pytest.raises(RenderError) as info:
        render_resource(task, BUILTIN, make_context(), {}, POLICY)
    assert info.value.field == "args.manifest.spec.serviceAccountName"
    assert "may not name service account 'myapp'" in str(info.value)
