"""The container entrypoint, run with the local /bin/sh, and its termination message format."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from myapp.core.model import OutputSpec
from myapp.k8s.entrypoint import outputs_env, parse_termination_outputs, wrapped_command


def run(tmp_path: Path, argv: list[str], outputs: list[OutputSpec]) -> tuple[int, str, Path]:
    workdir = tmp_path / "space" / "1" / "t" / "1"
    log = tmp_path / "termination-log"
    command, args = wrapped_command(argv)
    env = {
        "PATH": os.environ["PATH"],
        "MYAPP_WORKDIR": str(workdir),
        "MYAPP_TERMINATION_LOG": str(log),
        "MYAPP_OUTPUTS": outputs_env(outputs),
    }
    code = subprocess.run([*command, *args], env=env, check=False).returncode
    return code, log.read_text() if log.exists() else "", workdir


def test_outputs_are_kept_and_text_goes_to_the_termination_message(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    script = (
        f"mkdir -p {outside}/dir/empty; printf 'v1\\n' > {outside}/a.txt; echo hi > {outside}/dir/f; "
        "printf 'rel' > rel.txt"
    )
    outputs = [
        OutputSpec("a", f"{outside}/a.txt"),
        OutputSpec("d", f"{outside}/dir", "file"),
        OutputSpec("r", "rel.txt"),
        OutputSpec("missing", "nope.txt"),
    ]
    code, message, workdir = run(tmp_path, ["sh", "-c", script], outputs)
    assert code == 0
    assert parse_termination_outputs(message) == {"a": "v1\n", "r": "rel"}
    kept = workdir / ".myapp" / "outputs"
    assert (kept / "a" / "a.txt").read_text() == "v1\n"
    assert (kept / "d" / "dir" / "f").read_text() == "hi\n" and (kept / "d" / "dir" / "empty").is_dir()
    assert not (kept / "r").exists(), "relative outputs already live in the workflow space"


def test_a_failing_command_keeps_its_exit_code_and_collects_nothing(tmp_path: Path) -> None:
    code, message, workdir = run(tmp_path, ["sh", "-c", "echo x > out.txt; exit 3"], [OutputSpec("o", "/tmp/nope")])
    assert code == 3 and message == "" and not (workdir / ".myapp").exists()


def test_a_cut_or_foreign_termination_message_gives_what_is_whole() -> None:
    whole = "myapp-outputs 1\na 2\nok\nb 5\nhello\n"
    assert parse_termination_outputs(whole) == {"a": "ok", "b": "hello"}
    assert parse_termination_outputs(whole[:-3]) == {"a": "ok"}
    assert parse_termination_outputs("Error: out of memory") == {}
    assert parse_termination_outputs("myapp-outputs 1\nu 4\n\u00e9\u00e9\n") == {"u": "\u00e9\u00e9"}


def test_sigterm_reaches_the_task_and_its_exit_status_is_kept(tmp_path: Path) -> None:
    # The kubelet signals PID 1 (the wrapper) only: the wrapper must pass SIGTERM on to the task.
    import signal
    import time

    workdir = tmp_path / "w"
    command, args = wrapped_command(
        [
            "sh",
            "-c",
            "trap 'echo got-term > term.txt; exit 9' TERM; echo ready > ready.txt; while :; do sleep 0.05; done",
        ]
    )
    env = {"PATH": os.environ["PATH"], "MYAPP_WORKDIR": str(workdir), "MYAPP_TERMINATION_LOG": str(tmp_path / "t")}
    proc = subprocess.Popen([*command, *args], env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while not (workdir / "ready.txt").exists():
            assert time.monotonic() < deadline and proc.poll() is None, "the task did not start"
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)  # to the wrapper only, as a kubelet does
        # The task's own trap ran (not a kill after a grace period) and its status came back;
        # the wait's timeout only stops a hung wrapper from hanging the suite.
        assert proc.wait(timeout=60) == 9, "the wrapper exits with the task's own status"
        assert (workdir / "term.txt").read_text() == "got-term\n"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
