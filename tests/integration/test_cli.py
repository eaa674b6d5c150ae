"""The CLI as a user runs it (subprocesses): import/validate/export, versions, runs, logs, errors."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from myapp.core.pipeline_spec import parse_pipeline, pipeline_to_dict
from myapp.yaml_io import load_yaml
from tests.conftest import NO_TASK_ACCOUNTS
from tests.integration.engine_helpers import slice_fails_until

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cli(services: Any) -> Any:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MYAPP_")} | NO_TASK_ACCOUNTS
    env.update(
        {
            "MYAPP_HOME": str(services.settings.home),
            "MYAPP_DATABASE_URL": services.settings.effective_database_url,
            "MYAPP_SECRET_KEY": "test-secret-key-of-at-least-32-bytes!!",
            "MYAPP_WORKFLOW_SPACE": str(services.settings.workflow_space),
        }
    )

    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "myapp", *args],
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=REPO,
        )

    return run


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


GOOD = """
    name: cli-demo
    description: demo
    parameters:
      - {name: who, default: world}
    tasks:
      - name: hello
        template: shell
        args: {script: 'echo "hello $who"'}
        inputs: {who: {from: params.who}}
"""


def test_import_export_roundtrip_and_versions(cli: Any, tmp_path: Path) -> None:
    path = write(tmp_path, "p.yaml", GOOD)
    out = cli("pipeline", "import", path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "cli-demo: version 1"
    assert cli("pipeline", "import", path).stdout.strip() == "cli-demo: unchanged (version 1)"
    exported = cli("pipeline", "export", "cli-demo")
    assert exported.returncode == 0
    normalized = pipeline_to_dict(parse_pipeline(load_yaml(textwrap.dedent(GOOD))))
    normalized["tasks"][0]["template"] = "shell@1"  # saving pins the template version
    assert load_yaml(exported.stdout) == normalized
    changed = write(tmp_path, "p2.yaml", GOOD.replace("description: demo", "description: changed"))
    assert cli("pipeline", "import", changed).stdout.strip() == "cli-demo: version 2"
    versions = json.loads(cli("pipeline", "versions", "cli-demo", "--json").stdout)
    assert [v["number"] for v in versions] == [2, 1]
    listed = json.loads(cli("pipeline", "list", "--json").stdout)
    assert any(p["name"] == "cli-demo" and p["version"] == 2 for p in listed)


BOUND = """
    name: cli-bound
    tasks:
      - name: step1
        template: shell
        args: {script: 'echo hi > /tmp/x.txt'}
        outputs: [{name: x, path: /tmp/x.txt}]
      - name: step2
        template: shell
        args: {script: 'echo "$x"'}
        inputs: {x: {from: step1.x}}
"""


def test_export_lists_binding_implied_edges_and_reimporting_it_changes_nothing(cli: Any, tmp_path: Path) -> None:
    path = write(tmp_path, "bound.yaml", BOUND)
    assert cli("pipeline", "import", path).stdout.strip() == "cli-bound: version 1"
    exported = cli("pipeline", "export", "cli-bound")
    assert exported.returncode == 0, exported.stderr
    tasks = load_yaml(exported.stdout)["tasks"]
    assert [t.get("depends_on") for t in tasks] == [None, ["step1"]]
    again = cli("pipeline", "import", "-", stdin=exported.stdout)
    assert again.stdout.strip() == "cli-bound: unchanged (version 1)", again.stderr
    assert cli("pipeline", "export", "cli-bound").stdout == exported.stdout


@pytest.mark.parametrize(
    "body,message",
    [
        ("name: Bad_Name\ntasks: []\n", "name"),
        ("name: x\ntasks:\n  - {name: a, template: nope}\n", "tasks[a].template"),
        (
            "name: x\ntasks:\n  - {name: a, template: shell, args: {script: hi}, depends_on: [b]}\n"
            "  - {name: b, template: shell, args: {script: hi}, depends_on: [a]}\n",
            "cycle",
        ),
        (
            "name: x\ntasks:\n  - {name: a, template: shell, args: {script: hi}}\n  - {name: a, template: shell, args: {script: hi}}\n",
            "a",
        ),
        ("name: x\ntasks:\n  - {name: a, template: shell}\n", "script"),
        (
            "name: x\ntasks:\n  - {name: a, template: shell, args: {script: hi}, inputs: {v: {from: b.out}}}\n"
            "  - {name: b, template: shell, args: {script: hi}}\n",
            "tasks[a].inputs",
        ),
        ("name: x\nschedule: {type: crontab, cron: '61 * * * *'}\ntasks: []\n", "schedule.cron"),
        (
            "name: x\nschedule: {type: crontab, cron: '0 * * * *', timezone: Mars/Base}\ntasks: []\n",
            "schedule.timezone",
        ),
        ("name: x\ntasks:\n  - {name: a, template: shell, args: {script: hi}, retries: -1}\n", "retries"),
        ("{{{ not yaml", ""),
    ],
)
def test_invalid_pipeline_exits_2_with_one_line_and_writes_nothing(
    cli: Any, tmp_path: Path, body: str, message: str
) -> None:
    before = cli("pipeline", "list", "--json").stdout
    path = write(tmp_path, "bad.yaml", body)
    for verb in ("validate", "import"):
        out = cli("pipeline", verb, path)
        assert out.returncode == 2, (verb, out.stdout, out.stderr)
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("myapp: error: "), out.stderr
        assert message in lines[0]
    assert cli("pipeline", "list", "--json").stdout == before


def test_run_burst_logs_show_mark_copy(cli: Any, tmp_path: Path) -> None:
    assert cli("pipeline", "import", write(tmp_path, "p.yaml", GOOD)).returncode == 0
    started = cli("pipeline", "run", "cli-demo", "--param", "who=ada", "--json")
    assert started.returncode == 0, started.stderr
    run_id = json.loads(started.stdout)["run_id"]
    burst = cli("worker", "--burst")
    assert burst.returncode == 0, burst.stderr
    show = json.loads(cli("run", "show", str(run_id), "--json").stdout)
    assert show["state"] == "succeeded" and show["params"] == {"who": "ada"}
    logs = cli("run", "logs", str(run_id), "hello", "--plain")
    assert "hello ada" in logs.stdout.splitlines()
    assert cli("run", "logs", str(run_id), "hello", "--follow").returncode == 0
    assert cli("run", "mark", str(run_id), "--state", "failed").returncode == 0
    assert json.loads(cli("run", "show", str(run_id), "--json").stdout)["state"] == "failed"
    # Retrying a run marked failed whose tasks all succeeded re-runs nothing and ends it succeeded.
    assert cli("run", "retry", str(run_id)).returncode == 0
    retried = json.loads(cli("run", "show", str(run_id), "--json").stdout)
    assert retried["state"] == "succeeded" and len(retried["tasks"][0]["attempts"]) == 1
    refused = cli("run", "retry", str(run_id))
    assert refused.returncode == 1 and "only failed or stopped runs can be retried" in refused.stderr
    copy = cli("run", "copy", str(run_id), "--param", "who=bob")
    assert copy.returncode == 0 and "copy of" in copy.stdout
    assert cli("worker", "--burst").returncode == 0
    runs = json.loads(cli("run", "list", "--pipeline", "cli-demo", "--json").stdout)
    assert runs[0]["params"] == {"who": "bob"} and runs[0]["state"] == "succeeded"


def test_run_retry_of_one_slice_refuses_like_the_api_then_reruns_it_alone(cli: Any, tmp_path: Path) -> None:
    flag = tmp_path / "fixed"
    sliced = slice_fails_until("cli-slice-retry", flag)
    assert cli("pipeline", "import", write(tmp_path, "s.yaml", sliced)).returncode == 0
    started = cli("pipeline", "run", "cli-slice-retry", "--json")
    assert started.returncode == 0, started.stderr
    run_id = json.loads(started.stdout)["run_id"]
    assert cli("worker", "--burst").returncode == 0
    assert json.loads(cli("run", "show", str(run_id), "--json").stdout)["state"] == "failed"
    for name, code, words in [
        ("train[0]", 1, "slice 'train[0]' is succeeded"),
        ("train", 1, "'train' is not a slice"),
        ("train[9]", 1, "slice 'train[9]' not found"),
    ]:
        refused = cli("run", "retry", str(run_id), "--slice", name)
        assert refused.returncode == code and words in refused.stderr, (name, refused.stderr)
        assert refused.stderr.startswith("myapp: error: ") and refused.stderr.count("\n") == 1
    assert cli("run", "retry", "999999", "--slice", "train[1]").returncode == 1
    flag.write_text("")
    retried = cli("run", "retry", str(run_id), "--slice", "train[1]")
    assert retried.returncode == 0 and f"run {run_id} retrying slice train[1]" in retried.stdout, retried
    assert cli("worker", "--burst").returncode == 0
    run = json.loads(cli("run", "show", str(run_id), "--json").stdout)
    tries = {t["name"]: [a["try_number"] for a in t["attempts"]] for t in run["tasks"]}
    assert run["state"] == "succeeded" and tries["train[1]"] == [1, 2] and tries["train[0]"] == [1], run
    again = cli("run", "retry", str(run_id), "--slice", "train[1]")
    assert again.returncode == 1 and f"run {run_id} is succeeded; a slice of a failed" in again.stderr, again


def test_unknown_parameter_and_missing_objects(cli: Any, tmp_path: Path) -> None:
    assert cli("pipeline", "import", write(tmp_path, "p.yaml", GOOD)).returncode == 0
    bad = cli("pipeline", "run", "cli-demo", "--param", "nope=1")
    assert bad.returncode == 2 and "unknown parameter(s) nope" in bad.stderr
    assert cli("run", "show", "999999").returncode == 1
    missing = cli("pipeline", "export", "no-such-pipeline")
    assert missing.returncode == 1 and "not found" in missing.stderr


def test_debug_one_task(cli: Any, tmp_path: Path) -> None:
    assert cli("pipeline", "import", write(tmp_path, "p.yaml", GOOD)).returncode == 0
    started = cli("task", "debug", "cli-demo", "hello", "--input", "who=debugger", "--no-follow")
    assert started.returncode == 0, started.stderr
    assert cli("worker", "--burst").returncode == 0
    runs = json.loads(cli("run", "list", "--json").stdout)
    debug = next(r for r in runs if r["trigger"] == "debug")
    assert debug["state"] == "succeeded" and debug["debug_task"] == "hello"
    assert "hello debugger" in cli("run", "logs", str(debug["id"])).stdout


STAMPED = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} UTC  (\[stderr\] |\[myapp\] )?")


def test_log_lines_carry_their_time_and_stderr_is_marked(cli: Any, tmp_path: Path) -> None:
    assert (
        cli(
            "pipeline",
            "import",
            write(
                tmp_path,
                "p.yaml",
                """
        name: cli-streams
        tasks:
          - {name: talk, template: shell, args: {script: 'echo to-out; echo to-err >&2; exit 3'}}
    """,
            ),
        ).returncode
        == 0
    )
    run_id = json.loads(cli("pipeline", "run", "cli-streams", "--json").stdout)["run_id"]
    assert cli("worker", "--burst").returncode == 0
    lines = cli("run", "logs", str(run_id), "talk").stdout.splitlines()
    assert all(STAMPED.match(line) for line in lines), lines
    body = [STAMPED.sub(lambda m: m.group(1) or "", line) for line in lines]
    assert "to-out" in body and "[stderr] to-err" in body
    assert not any("/workflow_space" in line or "attempt 1 of task" in line for line in lines), lines
    plain = cli("run", "logs", str(run_id), "talk", "--plain").stdout.splitlines()
    assert "to-out" in plain and "to-err" in plain


def test_debug_fills_upstream_inputs_from_the_latest_succeeded_run(cli: Any, tmp_path: Path) -> None:
    assert (
        cli(
            "pipeline",
            "import",
            write(
                tmp_path,
                "p.yaml",
                """
        name: cli-upstream
        tasks:
          - name: make
            template: shell
            args: {script: 'echo made-text > /tmp/t.txt; mkdir -p d; echo in-file > d/f'}
            outputs:
              - {name: text, path: /tmp/t.txt, type: text}
              - {name: dir, path: d, type: file}
          - name: use
            template: shell
            inputs: {a: {from: make.text}, b: {from: make.dir}, c: {from: make.text}}
            args: {script: 'echo "a=$a c=$c"; cat "$b/f"'}
    """,
            ),
        ).returncode
        == 0
    )
    refused = cli("task", "debug", "cli-upstream", "use", "--input", "a=given", "--no-follow")
    assert refused.returncode == 2
    assert "b, c" in refused.stderr and "no succeeded run" in refused.stderr and "a," not in refused.stderr
    assert cli("pipeline", "run", "cli-upstream").returncode == 0
    assert cli("worker", "--burst").returncode == 0
    started = cli("task", "debug", "cli-upstream", "use", "--input", "a=given", "--no-follow")
    assert started.returncode == 0, started.stderr
    assert "input b = " in started.stdout and "make.dir of run" in started.stdout
    assert cli("worker", "--burst").returncode == 0
    debug_id = int(started.stdout.split("debug run ")[1].split()[0])
    assert json.loads(cli("run", "show", str(debug_id), "--json").stdout)["state"] == "succeeded"
    out = cli("run", "logs", str(debug_id), "use", "--plain").stdout.splitlines()
    assert out == ["a=given c=made-text", "in-file"]


def test_debug_takes_an_upstream_list_of_files_from_the_latest_succeeded_run(cli: Any, tmp_path: Path) -> None:
    files = """
        name: cli-upstream-files
        tasks:
          - name: split
            image: local
            command: ["sh", "-c", "mkdir shards && for s in b a; do echo rows-$s > shards/$s.csv; done"]
            outputs: [{name: shards, path: shards, type: files}]
          - name: join
            image: local
            command: ["python3", "-c", "import json, sys; print([open(p).read().strip() for p in json.loads(sys.argv[1])])", "$shards"]
            inputs: {shards: {from: split.shards}}
    """
    assert cli("pipeline", "import", write(tmp_path, "f.yaml", files)).returncode == 0
    refused = cli("task", "debug", "cli-upstream-files", "join", "--no-follow")
    assert refused.returncode == 2 and "shards (pipeline 'cli-upstream-files' has no succeeded run" in refused.stderr
    assert cli("pipeline", "run", "cli-upstream-files").returncode == 0
    assert cli("worker", "--burst").returncode == 0
    started = cli("task", "debug", "cli-upstream-files", "join", "--no-follow")
    assert started.returncode == 0, started.stderr
    assert "input shards = " in started.stdout and "(files output split.shards of run" in started.stdout
    assert cli("worker", "--burst").returncode == 0
    debug_id = int(started.stdout.split("debug run ")[1].split()[0])
    assert json.loads(cli("run", "show", str(debug_id), "--json").stdout)["state"] == "succeeded"
    assert cli("run", "logs", str(debug_id), "join", "--plain").stdout.splitlines() == ["['rows-a', 'rows-b']"]


def test_init_twice_is_safe(cli: Any) -> None:
    first = cli("init", "--admin-password", "x")
    second = cli("init", "--admin-password", "x")
    assert first.returncode == 0 and second.returncode == 0, second.stderr


def test_run_show_lists_attempts_with_try_numbers_in_aligned_columns(cli: Any, tmp_path: Path) -> None:
    marker = tmp_path / "tried-once"
    assert (
        cli(
            "pipeline",
            "import",
            write(
                tmp_path,
                "p.yaml",
                f"""
        name: cli-flaky
        tasks:
          - name: prepare
            template: shell
            args: {{script: 'echo ready'}}
          - name: flaky
            template: shell
            depends_on: [prepare]
            retries: 1
            args: {{script: 'if [ -e {marker} ]; then echo second try works; else touch {marker}; echo first try fails >&2; exit 1; fi'}}
    """,
            ),
        ).returncode
        == 0
    )
    run_id = json.loads(cli("pipeline", "run", "cli-flaky", "--json").stdout)["run_id"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # the retry waits for its delay: burst until the run ends
        assert cli("worker", "--burst").returncode == 0
        if json.loads(cli("run", "show", str(run_id), "--json").stdout)["state"] == "succeeded":
            break
    out = cli("run", "show", str(run_id)).stdout.splitlines()
    header = next(i for i, line in enumerate(out) if line.startswith("TASK (TRY)"))
    rows = out[header:]
    assert rows[1].startswith("prepare (1) ") and rows[2].startswith("flaky (2) ")
    assert rows[3].lstrip().startswith("try 1") and "failed" in rows[3] and "exit code 1" in rows[3]
    assert rows[4].lstrip().startswith("try 2") and "succeeded" in rows[4]
    state_col = rows[0].index("STATE")
    assert all(row[state_col - 2 : state_col] == "  " and row[state_col] != " " for row in rows[1:5]), rows
    assert re.search(r"execution date \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", "\n".join(out))
    logs = cli("run", "logs", str(run_id), "flaky").stdout
    assert "[flaky (1)]" not in logs and "[stderr] first try fails" in logs and "second try works" in logs
