"""Engine scenarios through a real Celery worker (Redis broker) and the configured database.

Each test saves its own pipeline and watches a run to its end: DAG order, failure propagation,
retries, timeouts, stop, retry-from-failure, copy, parameter passing and a debug run.
"""

from __future__ import annotations

import shutil
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.integration.engine_helpers import (
    detail,
    log_text,
    save,
    start,
    task_lines,
    wait_finished,
    wait_until,
)
from tests.processes import alive, running_argv

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def _started(t: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(t["attempts"][0]["started_at"])


def _ended(t: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(t["attempts"][-1]["ended_at"])


def test_diamond_runs_in_dependency_order(engine_services: Any) -> None:
    pid = save(
        engine_services,
        """
        name: diamond
        tasks:
          - {name: a, template: shell, args: {script: "sleep 0.2; echo a"}}
          - {name: b, template: shell, args: {script: "sleep 0.3; echo b"}, depends_on: [a]}
          - {name: c, template: shell, args: {script: "sleep 0.1; echo c"}, depends_on: [a]}
          - {name: d, template: shell, args: {script: "echo d"}, depends_on: [b, c]}
    """,
    )
    run = wait_finished(engine_services, start(engine_services, pid))
    t = run["by_name"]
    assert run["state"] == "succeeded", run
    assert all(t[n]["state"] == "succeeded" for n in "abcd")
    assert _started(t["b"]) >= _ended(t["a"]) and _started(t["c"]) >= _ended(t["a"])
    assert _started(t["d"]) >= max(_ended(t["b"]), _ended(t["c"]))
    assert task_lines(engine_services, run["id"], "d") == ["d"]


def test_failure_propagates_and_independent_branch_continues(engine_services: Any) -> None:
    pid = save(
        engine_services,
        """
        name: propagate
        tasks:
          - {name: bad, template: shell, args: {script: "echo broken >&2; exit 3"}}
          - {name: child, template: shell, args: {script: "echo never"}, depends_on: [bad]}
          - {name: grandchild, template: shell, args: {script: "echo never"}, depends_on: [child]}
          - {name: other, template: shell, args: {script: "sleep 0.5; echo fine"}}
          - {name: after-other, template: shell, args: {script: "echo fine too"}, depends_on: [other]}
    """,
    )
    run = wait_finished(engine_services, start(engine_services, pid))
    t = run["by_name"]
    assert run["state"] == "failed"
    assert t["bad"]["state"] == "failed" and "exit code 3" in t["bad"]["message"]
    assert t["child"]["state"] == "upstream_failed" and t["grandchild"]["state"] == "upstream_failed"
    assert t["other"]["state"] == "succeeded" and t["after-other"]["state"] == "succeeded"
    assert t["child"]["attempts"] == []
    assert "broken" in log_text(engine_services, run["id"], "bad")


def test_retries_fail_twice_then_succeed(engine_services: Any) -> None:
    pid = save(
        engine_services,
        """
        name: flaky
        tasks:
          - name: flaky
            template: shell
            args: {script: 'echo "try $MYAPP_TRY_NUMBER"; [ "$MYAPP_TRY_NUMBER" -ge 3 ]'}
            retries: 2
    """,
    )
    run = wait_finished(engine_services, start(engine_services, pid))
    ti = run["by_name"]["flaky"]
    assert run["state"] == "succeeded"
    assert ti["try_number"] == 3
    assert [a["state"] for a in ti["attempts"]] == ["failed", "failed", "succeeded"]
    assert task_lines(engine_services, run["id"], "flaky", 2) == ["try 2"]


def test_retries_exhausted_fail_the_task(engine_services: Any) -> None:
    pid = save(
        engine_services,
        """
        name: always-fails
        tasks:
          - {name: x, template: shell, args: {script: "exit 1"}, retries: 1}
    """,
    )
    run = wait_finished(engine_services, start(engine_services, pid))
    assert run["state"] == "failed"
    assert [a["state"] for a in run["by_name"]["x"]["attempts"]] == ["failed", "failed"]


_alive = alive  # test_k8s_scenarios imports it from here


def test_task_timeout_kills_the_process_group(engine_services: Any, tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    # The child's unique argv finds it on the host; it sleeps far longer than the wait for its death
    # below, so that it cannot end by itself within it however slow the machine.
    seconds = f"{600 + uuid.uuid4().int % 10**6 / 10**6:.6f}"
    pid = save(
        engine_services,
        f"""
        name: task-timeout
        tasks:
          - name: slow
            template: shell
            args: {{script: "sleep {seconds} & echo $! > {pidfile}; wait"}}
            timeout: 1
    """,
    )
    run = wait_finished(engine_services, start(engine_services, pid))
    ti = run["by_name"]["slow"]
    assert run["state"] == "failed"
    assert ti["state"] == "failed" and "timed out after 1 s" in ti["message"]
    assert pidfile.read_text().strip(), "the task did not start its child"
    deadline = time.monotonic() + 60
    while running_argv("sleep", seconds) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not running_argv("sleep", seconds), "the background child of the timed-out task survived"


def test_run_timeout_fails_running_and_stops_unstarted(engine_services: Any) -> None:
    pid = save(
        engine_services,
        """
        name: run-timeout
        timeout: 2
        tasks:
          - {name: long, template: shell, args: {script: "sleep 60"}}
          - {name: later, template: shell, args: {script: "echo later"}, depends_on: [long]}
    """,
    )
    run = wait_finished(engine_services, start(engine_services, pid), timeout=60)
    t = run["by_name"]
    assert run["state"] == "failed" and "timed out" in run["message"]
    assert t["long"]["state"] == "failed"
    assert t["later"]["state"] == "stopped" and t["later"]["attempts"] == []


def test_stop_while_running(engine_services: Any) -> None:
    pid = save(
        engine_services,
        """
        name: stoppable
        tasks:
          - {name: long, template: shell, args: {script: "echo started; sleep 600"}}
          - {name: next, template: shell, args: {script: "echo next"}, depends_on: [long]}
          - {name: parallel, template: shell, args: {script: "sleep 600"}}
    """,
    )
    run_id = start(engine_services, pid)
    running = wait_until(
        engine_services,
        run_id,
        lambda d: d["by_name"]["long"]["state"] == "running" and d["by_name"]["long"]["attempts"][0]["pid"],
        what="long to run",
    )
    proc_pid = running["by_name"]["long"]["attempts"][0]["pid"]
    engine_services.runs.stop_run(run_id, engine_services.clock.now(), by="tester")
    run = detail(engine_services, run_id)
    assert run["state"] == "stopped"
    assert {t["name"]: t["state"] for t in run["tasks"]} == {
        "long": "stopped",
        "next": "stopped",
        "parallel": "stopped",
    }
    deadline = time.monotonic() + 60  # the task sleeps 600 s: only the stop ends it within this
    while _alive(proc_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(proc_pid), "stop did not kill the running attempt"
    time.sleep(0.5)
    assert detail(engine_services, run_id)["by_name"]["next"]["attempts"] == []


def test_retry_from_failure_reuses_outputs(engine_services: Any, tmp_path: Path) -> None:
    flag = tmp_path / "fixed"
    pid = save(
        engine_services,
        f"""
        name: retry-from-failure
        tasks:
          - name: produce
            template: shell
            args: {{script: "echo value-$MYAPP_TRY_NUMBER > out.txt; mkdir -p data; echo payload > data/f"}}
            outputs:
              - {{name: text, path: out.txt, type: text}}
              - {{name: data, path: data, type: file}}
          - name: consume
            template: shell
            args: {{script: 'test -e {flag} || exit 1; echo "$text"; cat "$data/f"'}}
            inputs:
              text: {{from: produce.text}}
              data: {{from: produce.data}}
    """,
    )
    run_id = start(engine_services, pid)
    first = wait_finished(engine_services, run_id)
    assert first["state"] == "failed" and first["by_name"]["consume"]["state"] == "failed"
    flag.write_text("ok")
    engine_services.runs.retry_run(run_id, engine_services.clock.now())
    run = wait_finished(engine_services, run_id)
    t = run["by_name"]
    assert run["state"] == "succeeded" and run["id"] == run_id
    assert len(t["produce"]["attempts"]) == 1, "a succeeded task ran again"
    assert t["consume"]["try_number"] == 2
    assert task_lines(engine_services, run_id, "consume", 2) == ["value-1", "payload"]


def test_copy_starts_a_new_run_with_the_same_parameters(engine_services: Any) -> None:
    pid = save(
        engine_services,
        """
        name: copyable
        parameters:
          - {name: who, default: nobody}
        tasks:
          - name: hello
            template: shell
            args: {script: 'echo "hello $who"'}
            inputs: {who: {from: params.who}}
    """,
    )
    first = wait_finished(engine_services, start(engine_services, pid, {"who": "ada"}))
    copy_id = engine_services.runs.copy_run(first["id"], engine_services.clock.now())
    copy = wait_finished(engine_services, copy_id)
    assert copy["id"] != first["id"] and copy["copied_from"] == first["id"]
    assert copy["params"] == {"who": "ada"} and copy["version"] == first["version"]
    assert task_lines(engine_services, copy_id, "hello") == ["hello ada"]
    edited = wait_finished(
        engine_services, engine_services.runs.copy_run(first["id"], engine_services.clock.now(), {"who": "bob"})
    )
    assert task_lines(engine_services, edited["id"], "hello") == ["hello bob"]


REFERENCE = """
    name: parameter-passing
    tasks:
      - name: step1
        template: shell
        args:
          script: |
            echo "outpraram1" >  /tmp/outpraram1.txt
            echo "outpraram2" >  /tmp/outpraram2.txt
            mkdir -p /tmp/outpraram3
            touch /tmp/outpraram3/file1
        outputs:
          - {name: output_param1, path: /tmp/outpraram1.txt, type: text}
          - {name: output_param2, path: /tmp/outpraram2.txt, type: file}
          - {name: output_param3, path: /tmp/outpraram3, type: file}
      - name: step2
        template: shell
        depends_on: [step1]
        inputs:
          step1param1: {from: step1.output_param1}
          step1param2: {from: step1.output_param2}
          step1param3: {from: step1.output_param3}
        args:
          script: |
            echo $step1param1
            echo $step1param2
            echo $step1param3
            cat $step1param2
            ls $step1param3
"""


def test_reference_parameter_passing_example(engine_services: Any) -> None:
    # The reference writes under /tmp; a directory of this test's own keeps two suites running at once apart.
    scratch = f"/tmp/myapp-reference-{uuid.uuid4().hex[:8]}"
    text = REFERENCE.replace("/tmp/", f"{scratch}/").replace(
        "script: |\n", f"script: |\n            mkdir -p {scratch}\n", 1
    )
    run = wait_finished(engine_services, start(engine_services, save(engine_services, text)))
    shutil.rmtree(scratch, ignore_errors=True)
    assert run["state"] == "succeeded", run
    lines = task_lines(engine_services, run["id"], "step2")
    assert len(lines) == 5, lines
    assert lines[0] == "outpraram1"
    assert lines[1].endswith("/outpraram2.txt") and lines[2].endswith("/outpraram3")
    assert lines[3:] == ["outpraram2", "file1"]


def test_debug_run_of_one_task(engine_services: Any) -> None:
    pid = save(
        engine_services,
        """
        name: debuggable
        tasks:
          - {name: first, template: shell, args: {script: "echo first > out.txt"}, outputs: [{name: o, path: out.txt}]}
          - name: second
            template: shell
            args: {script: 'echo "got $o"'}
            inputs: {o: {from: first.o}}
    """,
    )
    run = wait_finished(engine_services, start(engine_services, pid, debug_task="second", debug_inputs={"o": "typed"}))
    assert run["trigger"] == "debug" and run["state"] == "succeeded"
    assert [t["name"] for t in run["tasks"]] == ["second"]
    assert task_lines(engine_services, run["id"], "second") == ["got typed"]


def test_task_env_and_workdir(engine_services: Any) -> None:
    pid = save(
        engine_services,
        """
        name: env-check
        tasks:
          - name: env
            template: shell
            args: {script: 'echo "$MYAPP_RUN_ID|$MYAPP_TASK_NAME|${MYAPP_TOKEN:0:4}|$(pwd)"'}
    """,
    )
    run = wait_finished(engine_services, start(engine_services, pid))
    line = task_lines(engine_services, run["id"], "env")[0]
    run_id, task, token, cwd = line.split("|")
    assert run_id == str(run["id"]) and task == "env" and token == "run-"
    assert cwd.startswith(str(engine_services.settings.workflow_space))


def test_logs_are_live_through_redis_then_archived(engine_services: Any) -> None:
    from myapp.logs.attempt_logs import LogKey

    # The task waits for the test to have read its first line (a fixed sleep could end before a
    # loaded machine lets the test look).
    release = engine_services.settings.home / f"live-logs-{uuid.uuid4().hex[:8]}"
    pid = save(
        engine_services,
        f"""
        name: live-logs
        tasks:
          - {{name: talk, template: shell, args: {{script: "echo first; while [ ! -e {release} ]; do sleep 0.1; done; echo second"}}}}
    """,
    )
    run_id = start(engine_services, pid)
    key = LogKey(run_id, "talk", 1)
    deadline = time.monotonic() + 120
    lines: list[str] = []
    while time.monotonic() < deadline:
        lines, finished = engine_services.logs.lines(key)
        if "first\n" in lines:
            break
        time.sleep(0.1)
    assert "first\n" in lines and not finished, "the first line was not readable while the task ran"
    assert engine_services.redis.exists(key.redis_key), "live lines are not in Redis"
    assert not key.path(engine_services.settings.logs_dir).exists()
    release.touch()
    wait_finished(engine_services, run_id)
    lines, finished = engine_services.logs.lines(key)
    assert finished and lines[-2:] == ["first\n", "second\n"]
    assert key.path(engine_services.settings.logs_dir).exists()


def test_missing_command_fails_with_a_clear_message(engine_services: Any) -> None:
    pid = save(
        engine_services,
        """
        name: missing-command
        tasks:
          - {name: x, image: local, command: ["no-such-command-here", "--flag"]}
    """,
    )
    run = wait_finished(engine_services, start(engine_services, pid))
    ti = run["by_name"]["x"]
    assert run["state"] == "failed"
    assert ti["message"] == "task 'x': cannot start 'no-such-command-here': command not found"


def test_trigger_rules_run_a_cleanup_after_a_failure_and_skip_what_they_say(engine_services: Any) -> None:
    # R13 on the local executor through a real worker: `work` fails; `report` (default) is
    # upstream-failed; `cleanup` (all_done) and `alarm` (one_failed) run; `audit` (one_failed
    # after a success) is skipped and its child `notify` (default) is skipped too.
    pid = save(
        engine_services,
        """
        name: rules
        tasks:
          - {name: work, template: shell, args: {script: "exit 3"}}
          - {name: fine, template: shell, args: {script: "echo fine"}}
          - {name: report, template: shell, args: {script: "echo report"}, depends_on: [work]}
          - {name: cleanup, template: shell, args: {script: "echo cleaned"}, depends_on: [work, fine],
             trigger_rule: all_done}
          - {name: alarm, template: shell, args: {script: "echo alarm"}, depends_on: [work], trigger_rule: one_failed}
          - {name: audit, template: shell, args: {script: "echo audit"}, depends_on: [fine], trigger_rule: one_failed}
          - {name: notify, template: shell, args: {script: "echo notify"}, depends_on: [audit]}
    """,
    )
    run = wait_finished(engine_services, start(engine_services, pid))
    got = {name: t["state"] for name, t in run["by_name"].items()}
    assert got == {
        "work": "failed",
        "fine": "succeeded",
        "report": "upstream_failed",
        "cleanup": "succeeded",
        "alarm": "succeeded",
        "audit": "skipped",
        "notify": "skipped",
    }, got
    assert run["state"] == "failed"  # the leaf `report` was upstream-failed (R13: outcome from the leaves)
    assert task_lines(engine_services, run["id"], "cleanup") == ["cleaned"]


def test_a_condition_over_an_upstream_output_skips_or_runs_a_task(engine_services: Any) -> None:
    # R14 on the local executor through a real worker: `low` is skipped (score 0.5), its child
    # is skipped (R13); `high` runs; nothing ran for the skipped tasks.
    pid = save(
        engine_services,
        """
        name: conditions
        parameters: [{name: threshold, default: '0.9'}]
        tasks:
          - {name: check, template: shell, args: {script: "echo 0.5 > score.txt"},
             outputs: [{name: score, path: score.txt}]}
          - {name: low, template: shell, args: {script: "echo ran"}, depends_on: [check],
             when: "{{ tasks.check.outputs.score | float > params.threshold | float }}"}
          - {name: after-low, template: shell, args: {script: "echo ran"}, depends_on: [low]}
          - {name: high, template: shell, args: {script: "echo ran"}, depends_on: [check],
             when: "{{ tasks.check.outputs.score | float > 0.1 }}"}
    """,
    )
    run = wait_finished(engine_services, start(engine_services, pid))
    got = {name: t["state"] for name, t in run["by_name"].items()}
    assert got == {"check": "succeeded", "low": "skipped", "after-low": "skipped", "high": "succeeded"}, got
    assert run["state"] == "succeeded"
    assert task_lines(engine_services, run["id"], "high") == ["ran"]
    assert "ran" not in log_text(engine_services, run["id"], "low")
    assert "condition" in run["by_name"]["low"]["message"]
