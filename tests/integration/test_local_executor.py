"""The local executor's process handling and attempt logs, without a database: output read in the
worker's thread (lines, cut lines, a last line without newline), kills that keep a task's last words,
leftover background processes, and short attempts that never need a live copy."""

from __future__ import annotations

import os
import random
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from myapp.core.pipeline_spec import parse_pipeline
from myapp.core.values import AttemptContext, AttemptResult
from myapp.executor import local
from myapp.executor.local import LocalConfig, LocalExecutor
from myapp.logs.attempt_logs import AttemptLog, LogKey, LogReader, Stream, parse_line

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


class NoTemplates:
    def get(self, ref: str) -> None:
        return None


@pytest.fixture()
def redis_client() -> Any:
    import redis

    base = os.environ.get("MYAPP_TEST_REDIS_URL", "redis://127.0.0.1:6379").rstrip("/")
    return redis.Redis.from_url(base + "/0")


def run_script(
    tmp_path: Path,
    script: str,
    redis_client: Any,
    *,
    stop_after: float | None = None,
) -> tuple[AttemptResult, list[str], LogKey, float]:
    """Run `sh -c script` as one attempt; return (result, archived log lines, log key, seconds taken)."""
    spec = parse_pipeline(
        {"name": "local", "tasks": [{"name": "t", "image": "local", "command": ["sh", "-c", script]}]}
    )
    run_id = random.randrange(10**8, 10**9)  # a log key no other test uses
    ctx = AttemptContext(
        attempt_id=1,
        task_instance_id=1,
        try_number=1,
        run_id=run_id,
        pipeline_id=1,
        pipeline_name="local",
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
    executor = LocalExecutor(
        LocalConfig(
            workflow_space=tmp_path / "ws",
            artifacts_dir=tmp_path / "artifacts",
            cluster_name="test",
            heartbeat_interval=0.1,
            kill_grace=2.0,
        ),
        NoTemplates(),
    )
    key = LogKey(run_id, "t", 1)
    log = AttemptLog(key, tmp_path / "logs", redis_client, buffered=True)
    began = time.monotonic()

    def heartbeat() -> bool:
        return stop_after is None or time.monotonic() - began < stop_after

    try:
        result = executor.run(ctx, log, heartbeat=heartbeat, now=lambda: datetime.now(UTC))
    finally:
        log.close()
    lines, finished = LogReader(tmp_path / "logs", redis_client).lines(key)
    assert finished
    return result, lines, key, time.monotonic() - began


def test_output_is_logged_line_by_line_and_a_huge_line_is_cut(tmp_path: Path, redis_client: Any) -> None:
    result, lines, _, _ = run_script(
        tmp_path,
        "echo one; head -c 200000 /dev/zero | tr '\\0' y; echo; echo three; printf 'no newline' >&2",
        redis_client,
    )
    assert result.succeeded
    body = [line for line in lines if not line.startswith("[myapp]")]
    assert body[0] == "one\n" and "three\n" in body and "no newline\n" in body
    cut = [line for line in body if line.startswith("yyy")]
    assert len(cut) == 1 and "line cut at" in cut[0] and len(cut[0]) < 70_000


def test_a_stopped_task_is_killed_and_its_last_words_are_kept(tmp_path: Path, redis_client: Any) -> None:
    script = "trap 'echo bye; exit 3' TERM; echo ready; while :; do sleep 0.05; done"
    result, lines, _, took = run_script(tmp_path, script, redis_client, stop_after=0.3)
    assert not result.succeeded and result.message == "attempt stopped"
    assert "ready\n" in lines and "bye\n" in lines and took < 20  # a task left running would hang here


def test_leftover_background_processes_die_and_do_not_hold_the_attempt(tmp_path: Path, redis_client: Any) -> None:
    pid_file = tmp_path / "ws" / "leftover.pid"  # the task's /tmp is its own: the workflow space is where both see
    pid_file.parent.mkdir()
    result, lines, _, took = run_script(tmp_path, f"sleep 30 & echo $! > {pid_file}; echo started", redis_client)
    assert result.succeeded and "started\n" in lines and took < 15  # not the 30 s of its leftover sleep
    leftover = int(pid_file.read_text())
    time.sleep(0.2)
    alive = os.path.exists(f"/proc/{leftover}") and " Z " not in Path(f"/proc/{leftover}/stat").read_text()
    assert not alive, "the task's background process outlived it"


def test_a_short_attempt_goes_straight_to_the_archive(tmp_path: Path, redis_client: Any) -> None:
    result, lines, key, _ = run_script(tmp_path, "echo quick", redis_client)
    assert result.succeeded and lines[-1] == "quick\n"
    assert not redis_client.exists(key.redis_key), "a live copy was made of an attempt that was never live"
    assert not key.path(tmp_path / "logs").with_suffix(".live").exists()


def test_a_longer_attempt_is_live_in_redis_until_archived(tmp_path: Path, redis_client: Any) -> None:
    result, lines, key, _ = run_script(tmp_path, "echo early; sleep 0.5; echo late", redis_client)
    assert result.succeeded and lines[-2:] == ["early\n", "late\n"]
    live = [parse_line(raw.decode()) for raw in redis_client.lrange(key.redis_key, 0, -1)[-2:]]
    assert [(e.stream, e.text) for e in live] == [(Stream.OUT, "early\n"), (Stream.OUT, "late\n")]
    assert 0 < redis_client.ttl(key.redis_key) <= 300  # expires soon after the archive


def test_without_pidfd_the_exit_is_noticed_by_polling(
    tmp_path: Path, redis_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(os, "pidfd_open", raising=False)
    result, lines, _, took = run_script(tmp_path, "sleep 30 & echo polled", redis_client)
    assert result.succeeded and lines[-1] == "polled\n" and took < 15  # not the 30 s of its leftover sleep


@pytest.mark.skipif(os.geteuid() != 0, reason="mount namespaces need root")
def test_a_root_worker_gives_each_attempt_a_tmp_of_its_own(tmp_path: Path, redis_client: Any) -> None:
    outside = Path("/tmp") / f"myapp-shared-{random.randrange(10**9)}"
    outside.write_text("host file")
    try:
        result, lines, _, _ = run_script(
            tmp_path, f'ls -A /tmp; test -e {outside} || echo "no host file"; echo x > /tmp/mine', redis_client
        )
    finally:
        outside.unlink()
    assert result.succeeded, lines
    # Only the workflow space's first step under /tmp (kept at its path) and nothing of the host's /tmp.
    assert lines[:2] == [f"{tmp_path.relative_to('/tmp').parts[0]}\n", "no host file\n"], lines
    assert not Path("/tmp/mine").exists()
    assert local.REMOVER.wait(), "the private /tmp was not removed within a minute"  # removed in the background
    assert not any((tmp_path / "ws").rglob("*-private")), "the attempt's private /tmp outlived it"


def test_a_worker_without_mount_namespaces_gives_each_attempt_a_tmpdir(
    tmp_path: Path, redis_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(local, "namespaces_refused", lambda: "the worker is not root")
    result, lines, _, _ = run_script(tmp_path, 'echo "$TMPDIR"; echo kept > "$TMPDIR/f"; cat "$TMPDIR/f"', redis_client)
    assert result.succeeded, lines
    tmpdir = Path(lines[0].strip())
    assert tmpdir.parent.name == ".1-private" and (tmp_path / "ws") in tmpdir.parents, lines
    assert local.REMOVER.wait(), "the TMPDIR was not removed within a minute"  # removed in the background
    assert lines[1] == "kept\n" and not tmpdir.exists(), lines
