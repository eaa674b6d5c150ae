"""The k8s_* settings parsed into KubeConfig; errors name the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from myapp.core.model import Resources
from myapp.k8s.config import kube_config
from myapp.settings import Settings, SettingsError


def settings(**values: object) -> Settings:
    return Settings(home=Path("/tmp/h"), workflow_space=Path("/data/space"), **values)  # type: ignore[arg-type]


def test_structured_settings_accept_json_yaml_and_pairs() -> None:
    cfg = kube_config(
        settings(
            k8s_node_selector="disktype=ssd, zone=a",
            k8s_tolerations='[{"key": "gpu", "operator": "Exists"}]',
            k8s_default_resources="{cpu: 500m, memory: 512Mi}",
            k8s_image_pull_secrets="a, b",
            k8s_resource_packages='{"gpu-1": {"cpu": "4", "memory": "16Gi", "gpu": 1}}',
            k8s_projects='{"ml": {"node_selector": {"pool": "gpu"}, "resources": {"cpu": "2"}, "image_pull_secrets": ["c"]}}',
        )
    )
    assert cfg.placement.node_selector == {"disktype": "ssd", "zone": "a"}
    assert cfg.placement.tolerations == ({"key": "gpu", "operator": "Exists"},)
    assert cfg.placement.resources == Resources(cpu="500m", memory="512Mi")
    assert cfg.packages == {"gpu-1": Resources(cpu="4", memory="16Gi", gpu=1)}
    assert cfg.workflow_space_mount == "/data/space"
    ml = cfg.placement_for("ml")
    assert ml.node_selector == {"disktype": "ssd", "zone": "a", "pool": "gpu"}
    assert ml.resources == Resources(cpu="2", memory="512Mi") and ml.image_pull_secrets == ("a", "b", "c")
    assert cfg.placement_for("other") == cfg.placement


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("k8s_tolerations", '{"key": "x"}', "MYAPP_K8S_TOLERATIONS: expected a list"),
        ("k8s_default_resources", '{"cpus": 1}', "MYAPP_K8S_DEFAULT_RESOURCES: unknown key(s) cpus"),
        ("k8s_resource_packages", '{"p": {"gpu": "lots"}}', "MYAPP_K8S_RESOURCE_PACKAGES.p: gpu 'lots'"),
        ("k8s_node_selector", "[1, 2]", "MYAPP_K8S_NODE_SELECTOR: expected a mapping"),
    ],
)
def test_bad_values_name_the_setting(field: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        kube_config(settings(**{field: value}))
