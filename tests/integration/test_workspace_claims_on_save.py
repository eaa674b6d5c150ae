"""On an installation whose executor is Kubernetes, a workspace claim the pod could not mount (none,
another project's, the workflow space's) is refused when the pipeline is saved, naming the task and
field the editor shows it at; the local executor ignores claims and accepts them."""

from __future__ import annotations

from pathlib import Path

from myapp.core.errors import SpecError
from myapp.core.model import WorkspaceBinding
from myapp.services import resource_check_for
from myapp.settings import load_settings
from tests.factories import make_task


def check(tmp_path: Path, executor: str, *claims: str) -> list[str]:
    settings = load_settings(
        {"MYAPP_HOME": str(tmp_path), "MYAPP_EXECUTOR": executor, "MYAPP_K8S_WORKFLOW_SPACE_PVC": "ml-space"}
    )
    task = make_task("fit", workspaces=tuple(WorkspaceBinding(f"w{i}", c, "") for i, c in enumerate(claims)))
    errors: list[SpecError] = resource_check_for(settings)(task, None, "ML Team")
    return [str(e) for e in errors]


def test_claims_are_checked_on_save_on_kubernetes(tmp_path: Path) -> None:
    assert check(tmp_path, "kubernetes", "ml-team-data", "", "default-data", "ml-space") == [
        "tasks[fit].workspaces.w1.claim: a workspace needs a PersistentVolumeClaim on the Kubernetes executor",
        "tasks[fit].workspaces.w2.claim: 'default-data' is not one of the project's claims (named ml-team-...)",
        "tasks[fit].workspaces.w3.claim: 'ml-space' is not one of the project's claims (named ml-team-...)",
    ]


def test_the_local_executor_ignores_claims(tmp_path: Path) -> None:
    assert check(tmp_path, "local", "", "anything") == []
