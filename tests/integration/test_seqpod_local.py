"""SeqPod on the local executor, through the real engine (Celery worker): three steps in one task
sharing its working directory, each step's output labelled in the log, and a failing step named in
the attempt's error (and the steps after it never run)."""

from __future__ import annotations

from typing import Any

import pytest

from myapp.catalog.plugins import parse_template
from tests.integration.engine_helpers import log_text, save, start, wait_finished

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]
# Each attempt has a /tmp of its own (as root: a mount namespace); the steps of one attempt share it.
SETTINGS_OVERRIDES = {"task_tmp": "private"}

SEQ_TEMPLATE = {
    "name": "seq-demo",
    "version": "1",
    "kind": "seqpod",
    "image": "python:3.12-slim",
    "parameters": {"greeting": {"type": "string", "default": "hello"}, "fail_with": {"type": "integer", "default": 0}},
    "outputs": [{"name": "result", "path": "result.txt", "type": "text"}],
    "extra": {
        "steps": [
            {
                "name": "write",
                "script": 'echo "$(params.greeting) from step 1" > shared.txt; echo "$(params.greeting) via tmp" > '
                '"${TMPDIR:-/tmp}/seq-note"; echo wrote',
            },
            {
                "name": "read",
                "language": "python",
                "script": (
                    "import os, sys\n"
                    "text = open('shared.txt').read().strip()\n"
                    "print('read:', text)\n"
                    "code = int(os.environ['fail_with'])\n"
                    "open('result.txt', 'w').write(text.upper())\n"
                    "sys.exit(code)\n"
                ),
            },
            {
                "name": "finish",
                "command": [
                    "sh",
                    "-c",
                    'echo finished > finished.txt; cat result.txt; echo; cat "${TMPDIR:-/tmp}/seq-note"',
                ],
            },
        ]
    },
}


def test_seqpod_steps_share_the_workdir_and_a_failed_step_is_named(engine_services: Any) -> None:
    engine_services.templates.sync([parse_template(SEQ_TEMPLATE)], "test", engine_services.clock.now())
    pid = save(
        engine_services,
        """
        name: seqpod-demo
        tasks:
          - {name: ok, template: seq-demo, args: {greeting: hi}}
          - {name: bad, template: seq-demo, args: {fail_with: 7}}
    """,
    )
    run = wait_finished(engine_services, start(engine_services, pid))
    ok, bad = run["by_name"]["ok"], run["by_name"]["bad"]
    ok_log = log_text(engine_services, run["id"], "ok")
    assert ok["state"] == "succeeded", (ok["message"], ok_log)
    assert ok["outputs"]["result"] == {"type": "text", "value": "HI FROM STEP 1"}
    assert "[write] wrote" in ok_log and "[read] read: hi from step 1" in ok_log
    assert "[finish] HI FROM STEP 1" in ok_log and "[finish] hi via tmp" in ok_log
    assert bad["state"] == "failed"
    assert "step 'read' failed with exit code 7" in bad["message"], bad
    workdir = engine_services.settings.workflow_space / str(run["id"]) / "bad" / "1"
    assert (workdir / "shared.txt").exists() and not (workdir / "finished.txt").exists()


WS_TEMPLATE = {
    "name": "ws-reader",
    "version": "1",
    "kind": "seqpod",
    "image": "alpine:3",
    "outputs": [{"name": "seen", "path": "seen.txt", "type": "text"}],
    "extra": {
        "steps": [
            {"name": "copy", "command": ["cp", "$(workspaces.data.path)/note.txt", "seen.txt"]},
            {"name": "append", "script": 'echo "read by $MYAPP_TASK_NAME" >> "$(workspaces.data.path)/log.txt"'},
        ]
    },
}


def test_workspaces_are_a_project_directory_shared_by_tasks_and_runs(engine_services: Any) -> None:
    engine_services.templates.sync([parse_template(WS_TEMPLATE)], "test", engine_services.clock.now())
    pid = save(
        engine_services,
        """
        name: workspace-demo
        tasks:
          - name: write
            image: alpine:3
            command: ["sh", "-c", "echo from-write > \\"$WS/note.txt\\""]
            env: {WS: "$(workspaces.data.path)"}
            workspaces: {data: {claim: data-pvc}}
          - {name: read, template: ws-reader, depends_on: [write], workspaces: {data: {claim: data-pvc}}}
    """,
    )
    first = wait_finished(engine_services, start(engine_services, pid))
    assert first["state"] == "succeeded", {
        t["name"]: (t["message"], log_text(engine_services, first["id"], t["name"])) for t in first["tasks"]
    }
    assert first["by_name"]["read"]["outputs"]["seen"] == {"type": "text", "value": "from-write"}
    second = wait_finished(engine_services, start(engine_services, pid))
    assert second["state"] == "succeeded"
    found = list((engine_services.settings.workflow_space / "workspaces").glob("*/data/log.txt"))
    assert len(found) == 1 and found[0].read_text() == "read by read\nread by read\n"  # kept across runs
