"""myapp.sdk against a real installation: submitted in-process (local) and over REST (the web app through
Flask's test client), run by a real Celery worker; state, steps, logs, outputs and artifact download."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import sys
import tarfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from myapp.sdk import PythonOPTemplate, Server, Step, SubmitError, Workflow
from myapp.sdk.credentials import load_credentials
from myapp.web.app import create_app
from tests.accounts import ensure_user
from tests.conftest import REPO
from tests.unit.sdk.ops import WriteFile, directory, flaky, read_files, sleepy

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]
WAIT = 120


def hello(name: str) -> Workflow:
    wf = Workflow(name, parameters={"greeting": "Hello"})
    write = Step("write", PythonOPTemplate(WriteFile), parameters={"msg": wf.parameters["greeting"], "number": 3})
    read = Step(
        "read",
        PythonOPTemplate(read_files),
        artifacts={"files": write.outputs.artifacts["out_art"]},
        parameters={"length": write.outputs.parameters["length"]},
    )
    tree = Step("tree", PythonOPTemplate(directory), parameters={"name": "leafy"})
    return wf.add([write, tree]).add(read)


@pytest.fixture(scope="module")
def app(engine_services: Any) -> Any:
    application = create_app(engine_services.settings, engine_services)
    application.config["TESTING"] = True
    with application.app_context():
        ensure_user(application, "outsider", "User")  # a member of no project
    return application


def client_transport(client: FlaskClient) -> Any:
    """Send the SDK's requests to the web app through Flask's test client."""

    def send(method: str, url: str, headers: Mapping[str, str], body: bytes | None) -> Any:
        res = client.open(url.removeprefix("http://myapp.test"), method=method, headers=dict(headers), data=body)
        return res.status_code, dict(res.headers), res.get_data()

    return send


def server(app: Any, user: str = "admin", password: str = "admin-pass") -> Server:
    return Server("http://myapp.test", username=user, password=password, transport=client_transport(app.test_client()))


def check_hello(run: Any, tmp_path: Path) -> None:
    state = run.wait(timeout=WAIT)
    assert state == "succeeded", (
        run.steps(),
        [(t["name"], t["message"]) for t in run.detail()["tasks"]],
        run.logs("write")[-2000:],
    )
    assert run.steps() == {"write": "succeeded", "tree": "succeeded", "read": "succeeded"}
    assert run.parameters("write") == {"length": 5}
    assert run.parameters("read") == {
        "summary": "Hello/3/10.0",
        "meta": {"files": ["msg.txt", "results.txt"], "ok": True},
    }
    assert "read 2 files: msg.txt, results.txt" in run.logs("read")
    files = run.download_artifact("write", "out_art", tmp_path / "write")
    assert [(p.name, p.read_text()) for p in files] == [("msg.txt", "Hello"), ("results.txt", "3")]
    copy = run.download_artifact("read", "copy", tmp_path / "read")
    assert copy.read_text() == "Hello|3"
    tree = run.download_artifact("tree", "tree", tmp_path / "tree")
    assert (tree / "sub" / "leaf.txt").read_text() == "leafy"


def test_submit_to_the_local_installation(engine_services: Any, tmp_path: Path) -> None:
    run = hello("sdk-local").submit(services=engine_services)
    check_hello(run, tmp_path)
    # The pipeline was saved as the YAML the SDK writes: it exports back to the same workflow.
    exported = engine_services.pipelines.export(run.pipeline_id)
    back = Workflow.from_spec(_spec(exported))
    assert back.to_dict()["tasks"] == exported["tasks"] and all(s.template is not None for s in back.steps)


def _spec(data: dict[str, Any]) -> Any:
    from myapp.core.pipeline_spec import parse_pipeline

    return parse_pipeline(data)


def test_submit_over_rest(app: Any, tmp_path: Path) -> None:
    wf = hello("sdk-rest")
    run = wf.submit({"greeting": "Hello"}, server=server(app))
    check_hello(run, tmp_path)
    again = wf.submit(server=server(app))  # the same workflow: the same pipeline, no new version
    assert again.pipeline_id == run.pipeline_id and again.id != run.id
    again.wait(timeout=WAIT)


def test_a_run_time_type_error_fails_the_step_and_says_why(app: Any) -> None:
    wf = Workflow("sdk-bad-input", parameters={"n": "3"})
    wf.add(Step("write", PythonOPTemplate(WriteFile), parameters={"msg": "x", "number": wf.parameters["n"]}))
    run = wf.submit({"n": "three"}, server=server(app))
    assert run.wait(timeout=WAIT) == "failed"
    assert run.steps() == {"write": "failed"}
    assert "input 'number': expected int, got 'three'" in run.logs("write")


def test_an_invalid_workflow_is_refused_with_the_field(app: Any) -> None:
    wf = Workflow("Not_A_Name")
    wf.add(Step("write", PythonOPTemplate(WriteFile), parameters={"msg": "x", "number": 1}))
    with pytest.raises(SubmitError, match="400") as caught:
        wf.submit(server=server(app))
    assert "name" in str(caught.value)


def test_artifact_download_endpoint(app: Any, engine_services: Any) -> None:
    client = app.test_client()
    run = hello("sdk-download").submit(server=server(app))
    assert run.wait(timeout=WAIT) == "succeeded"
    base = f"/api/v1/runs/{run.id}/artifacts"
    admin = {"Authorization": f"Bearer {_token(client, 'admin', 'admin-pass')}"}
    res = client.get(f"{base}/tree/tree", headers=admin)
    assert res.status_code == 200 and res.headers["X-Myapp-Artifact"] == "directory"
    with tarfile.open(fileobj=io.BytesIO(res.get_data()), mode="r:gz") as archive:
        names = set(archive.getnames())
    assert {"tree/tree/sub/leaf.txt", "tree/.myapp-artifact.json"} <= names
    # A plain file output (a task not written by the SDK) comes as the file itself.
    pipeline = client.post(
        "/api/v1/pipelines/",
        headers={**admin, "Content-Type": "application/yaml"},
        data=(
            "name: sdk-plain-file\ntasks:\n  - name: t\n    template: shell\n    args: {script: 'echo hi > out.txt'}\n"
            "    outputs: [{name: out, path: out.txt, type: file}, {name: word, path: out.txt, type: text}]\n"
        ),
    )
    assert pipeline.status_code == 200, pipeline.get_json()
    from myapp.sdk.server import RestBackend
    from myapp.sdk.submit import RunHandle

    started = client.post(f"/api/v1/pipelines/{pipeline.get_json()['id']}/runs", json={}, headers=admin)
    plain = RunHandle(RestBackend(server(app)), started.get_json()["id"], pipeline.get_json()["id"])
    assert plain.wait(timeout=WAIT) == "succeeded"
    res = client.get(f"/api/v1/runs/{plain.id}/artifacts/t/out", headers=admin)
    assert res.status_code == 200 and res.get_data() == b"hi\n" and res.headers["X-Myapp-Artifact"] == "file"
    assert plain.parameters("t") == {"word": "hi"}
    # A list of files (Artifact(List[Path]): a `files` output) is one artifact per item: listed, then by index.
    res = client.get(f"{base}/write/out_art", headers=admin)
    assert res.status_code == 200 and res.headers["X-Myapp-Artifact"] == "files"
    assert res.get_json() == {"type": "files", "items": ["msg.txt", "results.txt"]}
    res = client.get(f"{base}/write/out_art?index=1", headers=admin)
    assert res.status_code == 200 and res.get_data() == b"3" and res.headers["X-Myapp-Artifact-Name"] == "results.txt"
    res = client.get(f"{base}/write/out_art?index=2", headers=admin)
    assert res.status_code == 404 and "no item 2 (2 items)" in res.get_json()["message"]
    assert client.get(f"{base}/write/out_art?index=0", headers=outsider_headers(client)).status_code == 404
    # Who may not read the run gets 401 (anonymous) or 404 (not a member), as for the run itself.
    assert client.get(f"{base}/tree/tree").status_code == 401
    outsider = {"Authorization": f"Bearer {_token(client, 'outsider', 'outsider-pass')}"}
    assert client.get(f"{base}/tree/tree", headers=outsider).status_code == 404
    assert client.get(f"/api/v1/runs/{run.id}", headers=outsider).status_code == 404
    # Text outputs, unknown tasks and outputs: 404 with the reason.
    for path, reason in (
        (f"{base}/write/length", "no file output"),
        (f"{base}/nope/x", "not found"),
        (f"{base}/tree/nope", "no file output"),
    ):
        res = client.get(path, headers=admin)
        assert res.status_code == 404 and reason in res.get_json()["message"], (path, res.get_json())


def outsider_headers(client: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {_token(client, 'outsider', 'outsider-pass')}"}


def test_an_artifact_outside_the_store_is_not_served(app: Any, engine_services: Any, tmp_path: Path) -> None:
    store = engine_services.settings.artifacts_dir
    repository = engine_services.artifacts
    secret = tmp_path / "secret.txt"
    secret.write_text("no")
    for path in (secret, store / ".." / "myapp.db", store / "missing"):
        assert not repository.holds(str(path))
    link = store / "escape"
    store.mkdir(parents=True, exist_ok=True)
    link.symlink_to(secret)
    assert not repository.holds(str(link))


def _token(client: FlaskClient, user: str, password: str) -> str:
    res = client.post("/api/v1/security/login", json={"username": user, "password": password, "provider": "db"})
    assert res.status_code == 200, res.get_data(as_text=True)
    return str(res.get_json()["access_token"])


@pytest.fixture(scope="module")
def live_url(app: Any) -> Iterator[str]:
    """The web app served over real HTTP (werkzeug in a thread), as the browser tests serve it."""
    from tests.browser.conftest import LiveServer

    with LiveServer(app) as server:
        yield server.url


def myapp_cli(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "myapp", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )


def test_myapp_login_keeps_a_sign_in_the_sdk_submits_with(live_url: str, tmp_path: Path) -> None:
    creds = tmp_path / "credentials.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MYAPP_")}
    env.update({"MYAPP_CREDENTIALS": str(creds), "PYTHONPATH": str(REPO)})
    refused = myapp_cli(env, "login", live_url, "--password-stdin", stdin="wrong-pass\n")
    assert refused.returncode == 1 and "refused (401)" in refused.stderr and not creds.exists()
    signed = myapp_cli(env, "login", live_url, "--password-stdin", stdin="admin-pass\n")
    assert signed.returncode == 0, signed.stderr
    assert stat.S_IMODE(creds.stat().st_mode) == 0o600 and "admin-pass" not in creds.read_text()
    server = Server.from_env({"MYAPP_CREDENTIALS": str(creds)})
    assert server is not None and server.url == live_url
    server.token = "expired"  # as after jwt_access_minutes: the refresh token gets a new one, kept in the file
    run = hello("sdk-login").submit(server=server)
    check_hello(run, tmp_path)  # over real HTTP: submit, logs, outputs, artifact download (urllib)
    kept = load_credentials(creds)
    assert kept is not None and kept.access_token == server.token != "expired"
    out = myapp_cli(env, "logout")
    assert out.returncode == 0 and out.stdout.startswith("signed out of") and not creds.exists(), out.stderr
    server.token = None
    with pytest.raises(SubmitError, match="run `myapp login` again"):  # revoked on the server
        server.json("GET", "/api/v1/runs/")
    assert myapp_cli(env, "logout").returncode == 1


@pytest.mark.parametrize("over", ["rest", "local"])
def test_stop_and_retry_through_the_handle(app: Any, engine_services: Any, tmp_path: Path, over: str) -> None:
    submit: dict[str, Any] = {"server": server(app)} if over == "rest" else {"services": engine_services}
    slow = Workflow(f"sdk-stop-{over}").add(Step("nap", PythonOPTemplate(sleepy), parameters={"seconds": 120}))
    run = slow.submit(**submit)
    _until(lambda: "sleeping" in run.logs("nap"), "the step to start")
    run.stop()
    assert run.wait(timeout=WAIT) == "stopped" and run.steps() == {"nap": "stopped"}
    with pytest.raises(SubmitError):
        run.stop()  # already finished
    wf = Workflow(f"sdk-retry-{over}").add(
        Step("flaky", PythonOPTemplate(flaky), parameters={"marker": str(tmp_path / "marker")})
    )
    run = wf.submit(**submit)
    assert run.wait(timeout=WAIT) == "failed"
    assert "first try fails on purpose" in run.logs("flaky")
    run.retry()
    assert run.wait(timeout=WAIT) == "succeeded"
    assert run.parameters("flaky") == {"tries": 2} and run.step("flaky")["try_number"] == 2


def _until(condition: Any, what: str, timeout: float = WAIT) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_steps_with_a_condition_and_a_trigger_rule_run_as_the_rules_say(engine_services: Any) -> None:
    # docs/rules.md R13, R14 through myapp.sdk: `big` is skipped by its condition over write's output
    # parameter, `small` runs; `after` (all_done) runs after the skip, `strict` (default) is skipped.
    wf = Workflow("sdk-conditions")
    write = Step("write", PythonOPTemplate(WriteFile), parameters={"msg": "Hello", "number": 3})
    big = Step(
        "big",
        PythonOPTemplate(directory),
        parameters={"name": "b"},
        dependencies=[write],
        when="{{ tasks.write.outputs.length | int > 10 }}",
    )
    small = Step(
        "small",
        PythonOPTemplate(directory),
        parameters={"name": "s"},
        dependencies=[write],
        when="{{ tasks.write.outputs.length | int <= 10 }}",
    )
    after = Step(
        "after", PythonOPTemplate(directory), parameters={"name": "a"}, dependencies=[big], trigger_rule="all_done"
    )
    strict = Step("strict", PythonOPTemplate(directory), parameters={"name": "x"}, dependencies=[big])
    run = wf.add(write).add([big, small]).add([after, strict]).submit(services=engine_services)
    assert run.wait(timeout=WAIT) == "succeeded", run.steps()
    assert run.steps() == {
        "write": "succeeded",
        "big": "skipped",
        "small": "succeeded",
        "after": "succeeded",
        "strict": "skipped",
    }


def test_a_sliced_step_runs_one_slice_per_item_and_a_join_reads_the_gathered_outputs(
    engine_services: Any, tmp_path: Path
) -> None:
    # docs/rules.md R15 through myapp.sdk: dflow's Slices over a list parameter; the join gets the
    # list of the slices' texts and the list of their files.
    from tests.unit.sdk.test_workflow import sweep_workflow

    run = sweep_workflow().submit(services=engine_services)
    assert run.wait(timeout=WAIT) == "succeeded", run.steps()
    steps = run.steps()
    assert {k: v for k, v in steps.items() if k.startswith("train[")} == {
        "train[0]": "succeeded",
        "train[1]": "succeeded",
        "train[2]": "succeeded",
    }
    assert run.parameters("best") == {"best": 9.0, "texts": "s-2.25,s-4.0,s-9.0"}
    assert run.parameters("train") == {"y": [2.25, 4.0, 9.0]}  # the gathered list, each item decoded
    arts = run.download_artifact("train", "art", tmp_path / "arts")
    assert [p.read_text() for p in arts] == ["s-2.25", "s-4.0", "s-9.0"]


@pytest.mark.parametrize("over", ["local", "rest"])
def test_a_step_slices_over_a_list_of_paths_one_slice_per_file(
    app: Any, engine_services: Any, tmp_path: Path, over: str
) -> None:
    # dflow's Slices(input_artifact=...) over an Artifact(List[Path]) output: each slice gets one file
    # as its Path; a step that is not sliced gets the whole list; the list downloads in its order.
    from tests.unit.sdk.test_workflow import files_workflow

    wf = files_workflow()
    run = wf.submit(services=engine_services) if over == "local" else wf.submit(server=server(app))
    assert run.wait(timeout=WAIT) == "succeeded", (run.steps(), run.detail())
    steps = run.steps()
    assert {k: v for k, v in steps.items() if k.startswith("count[")} == {f"count[{i}]": "succeeded" for i in range(3)}
    assert [run.logs(f"count[{i}]").strip().splitlines()[-1] for i in range(3)] == [
        "shard-2.txt: rows of shard 2",
        "shard-1.txt: rows of shard 1",
        "shard-0.txt: rows of shard 0",
    ]
    assert run.parameters("count") == {"size": [15, 15, 15]}  # gathered in slice order
    assert run.parameters("names") == {"names": "shard-2.txt,shard-1.txt,shard-0.txt"}
    got = run.download_artifact("split", "shards", tmp_path / over)
    assert [(p.name, p.read_text()) for p in got] == [(f"shard-{i}.txt", f"rows of shard {i}") for i in (2, 1, 0)]
