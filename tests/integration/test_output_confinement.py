"""Outputs are read only inside the attempt's places (issue 12 item 7), by the local executor; the
Kubernetes side is in test_k8s_failures.py. A task that points an output at a file outside (a
symbolic link to the server's files, a path into another run's workspace) fails with a clear error."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from myapp.core.pipeline_spec import parse_pipeline
from myapp.core.values import AttemptContext, AttemptResult
from myapp.executor.local import LocalConfig, LocalExecutor
from myapp.executor.outputs import Confinement
from myapp.logs.attempt_logs import AttemptLog, LogKey

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


class NoTemplates:
    def get(self, ref: str) -> None:
        return None


def run(tmp_path: Path, script: str, outputs: list[dict[str, str]]) -> AttemptResult:
    spec = parse_pipeline(
        {
            "name": "confined",
            "tasks": [{"name": "t", "image": "local", "command": ["sh", "-c", script], "outputs": outputs}],
        }
    )
    run_id = random.randrange(10**8, 10**9)
    ctx = AttemptContext(
        attempt_id=1,
        task_instance_id=1,
        try_number=1,
        run_id=run_id,
        pipeline_id=1,
        pipeline_name="confined",
        spec=spec,
        task=spec.task("t"),
        trigger="manual",
        execution_date="2026-01-01 00:00:00",
        params={},
        creator="tester",
        runner="tester",
        user_id=None,
        token="run-1.x",
    )
    home = tmp_path / "home"
    config = LocalConfig(
        workflow_space=home / "ws",
        artifacts_dir=home / "artifacts",
        cluster_name="test",
        heartbeat_interval=0.1,
        kill_grace=2.0,
        confinement=Confinement(("/tmp",), (home, home / "ws")),
    )
    log = AttemptLog(LogKey(run_id, "t", 1), tmp_path / "logs", None, buffered=True)
    try:
        return LocalExecutor(config, NoTemplates()).run(ctx, log, heartbeat=lambda: True, now=lambda: datetime.now(UTC))
    finally:
        log.close()


def test_a_symbolic_link_out_of_the_workdir_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "home" / "kubeconfig.json"
    secret.parent.mkdir(parents=True)
    secret.write_text("token: s3cret")
    result = run(tmp_path, f"ln -s {secret} cfg.txt", [{"name": "cfg", "path": "cfg.txt"}])
    assert not result.succeeded
    assert f"output 'cfg' at cfg.txt resolves to {secret}" in result.message, result.message
    assert "s3cret" not in str(result.outputs)


def test_an_absolute_path_into_the_servers_data_is_refused_even_under_an_allowed_root(tmp_path: Path) -> None:
    secret = tmp_path / "home" / "admin_password"
    secret.parent.mkdir(parents=True)
    secret.write_text("hunter2")
    result = run(tmp_path, "true", [{"name": "pw", "path": str(secret)}])
    # With a private /tmp per attempt (a root worker) the path names a file of the attempt's own /tmp: none.
    refused = "outside the attempt's working directory" in result.message or "not found at" in result.message
    assert not result.succeeded and refused and "hunter2" not in str(result.outputs), result.message


def test_outputs_inside_the_workdir_or_an_allowed_location_are_read(tmp_path: Path) -> None:
    shared = Path("/tmp") / f"confined-{random.randrange(10**9)}.txt"
    try:
        result = run(
            tmp_path,
            f"echo in > in.txt; echo out > {shared}; mkdir d; ln -s /etc/hostname d/link",
            [
                {"name": "a", "path": "in.txt"},
                {"name": "b", "path": str(shared)},
                {"name": "d", "path": "d", "type": "file"},
            ],
        )
    finally:
        shared.unlink(missing_ok=True)
    assert result.succeeded, result.message
    assert result.outputs["a"]["value"] == "in" and result.outputs["b"]["value"] == "out"
    link = Path(result.outputs["d"]["path"]) / "link"
    assert link.is_symlink(), "a link inside a file output is copied as a link, never followed"
