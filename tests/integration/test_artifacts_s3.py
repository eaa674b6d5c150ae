"""File outputs through an S3 artifact repository (moto's S3 server on loopback): workers with
SEPARATE homes and workflow spaces pass a file and a directory; the producer's home and workflow
space are deleted before the consumer starts, so only the object store can carry them. A retry
on a third worker still finds the succeeded producer's outputs; the SDK's download and retention
go through the repository. A control run with the default on-disk repository shows the same
layout cannot pass the files (the test would catch a shared disk doing the work)."""

from __future__ import annotations

import io
import json
import shutil
import socket
import subprocess
import sys
import tarfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from myapp.executor.worker import local_executor, worker_name
from myapp.logs.attempt_logs import AttemptLog, LogKey
from myapp.retention.clean import clean
from myapp.sdk.submit import LocalBackend
from myapp.services import build_services
from tests.conftest import make_settings, worker_env
from tests.integration.engine_helpers import detail, save, start
from tests.s3server import S3Server

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

PIPELINE = """
name: s3-pass
tasks:
  - name: make
    image: local
    command:
      - sh
      - -c
      - |
        echo "hello from the producer" > message.txt
        mkdir -p model/sub/deeper model/empty
        head -c 5000 /dev/urandom > model/weights.bin
        echo notes > model/sub/notes.txt
        ln -s weights.bin model/latest
        cp model/weights.bin weights.copy
    outputs:
      - {name: msg, path: message.txt, type: file}
      - {name: model, path: model, type: file}
      - {name: digest, path: weights.copy, type: file}
  - name: use
    image: local
    depends_on: [make]
    inputs:
      msg: {from: make.msg}
      model: {from: make.model}
      digest: {from: make.digest}
    command:
      - sh
      - -c
      - |
        set -e
        [ "$(cat "$msg")" = "hello from the producer" ]
        [ -d "$model/empty" ] && [ -L "$model/latest" ] && [ "$(readlink "$model/latest")" = weights.bin ]
        cmp "$model/weights.bin" "$digest"
        echo "consumer saw: $(cat "$model/sub/notes.txt") in $model"
        [ "$MYAPP_TRY_NUMBER" -gt 1 ] || { echo "first try fails on purpose"; exit 3; }
        echo passed > result.txt
    outputs:
      - {name: result, path: result.txt, type: file}
"""


def worker(services: Any, home: Path, **overrides: Any) -> Any:
    """Return the services of a worker of its own (home, workflow space) on the test's database."""
    return build_services(make_settings(home, services.settings.database_url, redis_url="", **overrides))


def s3_worker(services: Any, s3: S3Server, home: Path) -> Any:
    return worker(services, home, artifact_repository=s3.url("runs"), artifact_s3_endpoint_url=s3.endpoint)


def run_one(svc: Any, services: Any) -> str:
    """Claim the one queued task instance with `svc` (one worker), run it to its end; return the task's name."""
    queued = services.attempts.claimable()
    assert len(queued) == 1, queued
    ctx = svc.attempts.claim(queued[0], worker_name(), svc.clock.now())
    assert ctx is not None
    log = AttemptLog(
        LogKey(ctx.run_id, ctx.task.name, ctx.try_number),
        svc.settings.logs_dir,
        None,
        buffered=True,
        clock=svc.clock.now,
    )
    try:
        result = local_executor(svc).run(ctx, log, heartbeat=lambda: True, now=svc.clock.now)
    finally:
        log.close()
    svc.attempts.finish(ctx.attempt_id, result, svc.clock.now())
    return str(ctx.task.name)


def forget(svc: Any) -> None:
    """Delete a worker's home and workflow space: nothing it wrote can be read from disk any more."""
    svc.db.dispose()
    shutil.rmtree(svc.settings.home)
    shutil.rmtree(svc.settings.workflow_space, ignore_errors=True)


def log_of(svc: Any, run_id: int, task: str, try_number: int) -> str:
    entries, _ = svc.logs.entries(LogKey(run_id, task, try_number), 0)
    return "".join(e.plain for e in entries)


def test_workers_with_separate_spaces_pass_a_file_and_a_directory_through_s3(
    services: Any, s3: S3Server, tmp_path: Path
) -> None:
    run_id = start(services, save(services, PIPELINE))
    producer = s3_worker(services, s3, tmp_path / "a")
    assert run_one(producer, services) == "make"
    stored = s3.keys(f"runs/{run_id}/")
    assert stored == sorted(
        [
            f"runs/{run_id}/make/1/msg/message.txt",
            f"runs/{run_id}/make/1/digest/weights.copy",
            f"runs/{run_id}/make/1/model/model/.myapp-tree.tar.gz",
        ]
    )
    forget(producer)

    first = s3_worker(services, s3, tmp_path / "b")
    assert run_one(first, services) == "use"
    run = detail(services, run_id)
    assert run["state"] == "failed" and run["by_name"]["use"]["state"] == "failed"
    said = log_of(first, run_id, "use", 1)
    assert "consumer saw: notes in " + str(tmp_path / "b") in said and "first try fails on purpose" in said
    forget(first)

    # Retry from the failure: `make` keeps its outputs (in S3) and does not run again.
    services.runs.retry_run(run_id, services.clock.now())
    second = s3_worker(services, s3, tmp_path / "c")
    assert run_one(second, services) == "use"
    run = detail(services, run_id)
    assert run["state"] == "succeeded", run
    assert [a["try_number"] for a in run["by_name"]["make"]["attempts"]] == [1]
    assert (
        run["by_name"]["use"]["outputs"]["result"]["path"] == f"s3://{s3.bucket}/runs/{run_id}/use/2/result/result.txt"
    )

    # The SDK's download (a local installation) reads through the repository.
    got = LocalBackend(second).fetch_artifact(run_id, "make", "model", tmp_path / "download")
    assert (got / "sub" / "notes.txt").read_text() == "notes\n" and (got / "empty").is_dir()
    assert (got / "latest").is_symlink()

    # The REST download reads through the repository too: the file as it is, the directory as a .tar.gz.
    client = web_client(second)
    admin = {"Authorization": f"Bearer {login(client)}"}
    res = client.get(f"/api/v1/runs/{run_id}/artifacts/make/msg", headers=admin)
    assert res.status_code == 200 and res.get_data() == b"hello from the producer\n", res.get_data()
    res = client.get(f"/api/v1/runs/{run_id}/artifacts/make/model", headers=admin)
    assert res.status_code == 200 and res.headers["X-Myapp-Artifact"] == "directory"
    with tarfile.open(fileobj=io.BytesIO(res.get_data()), mode="r:gz") as archive:
        assert {"model/empty", "model/latest", "model/sub/notes.txt"} <= set(archive.getnames())

    # A debug run of `use` fed with the producer's stored outputs, then retried on another worker:
    # the retry takes its inputs from what the first attempt showed, which names their locations.
    produced = run["by_name"]["make"]["outputs"]
    debug_id = start(
        services,
        run["pipeline_id"],
        debug_task="use",
        debug_inputs={name: {"type": "file", "path": produced[name]["path"]} for name in ("msg", "model", "digest")},
    )
    third = s3_worker(services, s3, tmp_path / "d")
    assert run_one(third, services) == "use"
    debug = detail(services, debug_id)
    assert debug["state"] == "failed" and "first try fails on purpose" in log_of(third, debug_id, "use", 1)
    assert debug["by_name"]["use"]["inputs"]["msg"]["path"] == produced["msg"]["path"]
    forget(third)
    services.runs.retry_run(debug_id, services.clock.now())
    assert run_one(s3_worker(services, s3, tmp_path / "e"), services) == "use"
    assert detail(services, debug_id)["state"] == "succeeded"

    # A repository that cannot be reached answers 503 and says which, not "not found".
    down = worker(
        services,
        tmp_path / "down",
        artifact_repository=s3.url("runs"),
        artifact_s3_endpoint_url=f"http://127.0.0.1:{closed_port()}",
    )
    res = web_client(down).get(f"/api/v1/runs/{run_id}/artifacts/make/msg", headers=admin)
    assert res.status_code == 503 and f"{s3.url('runs')} cannot be read" in res.get_json()["message"]

    # Retention deletes the run's objects.
    later = services.clock.now() + timedelta(days=30)
    clean(second, later, days=1)
    assert s3.keys(f"runs/{run_id}/") == []
    assert client.get(f"/api/v1/runs/{run_id}/artifacts/make/msg", headers=admin).status_code == 404


def test_a_list_of_files_reaches_its_slices_through_s3_on_other_workers(
    services: Any, s3: S3Server, tmp_path: Path
) -> None:
    """A `files` output is one object per item: each slice, on a worker of its own, fetches its file."""
    pid = save(
        services,
        """
        name: s3-list-of-files
        tasks:
          - name: split
            image: local
            command: ["sh", "-c", "mkdir -p shards/c && echo one > shards/a.txt && echo two > shards/b.txt && echo three > shards/c/x"]
            outputs: [{name: shards, path: shards, type: files}]
          - name: read
            image: local
            command: ["sh", "-c", "if [ -d $0 ]; then cat $0/x; else cat $0; fi > seen", "$shard"]
            inputs: {shard: {from: split.shards}}
            outputs: [{name: seen, path: seen, type: text}]
            slices: {inputs: [shard], parallelism: 1}
        """,
    )
    run_id = start(services, pid)
    producer = s3_worker(services, s3, tmp_path / "p")
    assert run_one(producer, services) == "split"
    assert s3.keys(f"runs/{run_id}/") == [
        f"runs/{run_id}/split/1/shards/0/a.txt",
        f"runs/{run_id}/split/1/shards/1/b.txt",
        f"runs/{run_id}/split/1/shards/2/c/.myapp-tree.tar.gz",
    ]
    forget(producer)
    for i in range(3):
        consumer = s3_worker(services, s3, tmp_path / f"c{i}")
        assert run_one(consumer, services) == f"read[{i}]"
        forget(consumer)
    run = detail(services, run_id)
    assert run["state"] == "succeeded", run
    assert json.loads(run["by_name"]["read"]["outputs"]["seen"]["value"]) == ["one", "two", "three"]


def closed_port() -> int:
    with socket.socket() as sock:  # bound, never listening: connections are refused
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def web_client(svc: Any) -> Any:
    from myapp.web.app import create_app

    app = create_app(svc.settings, svc)
    app.config["TESTING"] = True
    return app.test_client()


def login(client: Any) -> str:
    res = client.post("/api/v1/security/login", json={"username": "admin", "password": "admin-pass", "provider": "db"})
    assert res.status_code == 200, res.get_data(as_text=True)
    return str(res.get_json()["access_token"])


def test_without_a_shared_repository_the_consumer_cannot_find_the_files(services: Any, tmp_path: Path) -> None:
    """The control: each worker with its own on-disk repository (the default) fails the consumer,
    naming the missing artifact, so the test above passes only through the object store."""
    run_id = start(services, save(services, PIPELINE.replace("name: s3-pass", "name: disk-only")))
    producer = worker(services, tmp_path / "a")
    assert run_one(producer, services) == "make"
    forget(producer)
    consumer = worker(services, tmp_path / "b")
    assert run_one(consumer, services) == "use"
    run = detail(services, run_id)
    assert run["by_name"]["use"]["state"] == "failed"
    assert "not found" in run["by_name"]["use"]["attempts"][-1]["message"]


def test_a_store_that_refuses_the_upload_fails_the_attempt_and_says_where(
    services: Any, s3: S3Server, tmp_path: Path
) -> None:
    run_id = start(services, save(services, PIPELINE.replace("name: s3-pass", "name: no-bucket")))
    producer = worker(
        services,
        tmp_path / "a",
        artifact_repository="s3://myapp-no-such-bucket/runs",
        artifact_s3_endpoint_url=s3.endpoint,
    )
    assert run_one(producer, services) == "make"
    run = detail(services, run_id)
    message = run["by_name"]["make"]["attempts"][-1]["message"]
    assert run["by_name"]["make"]["state"] == "failed" and run["by_name"]["use"]["state"] == "upstream_failed"
    assert f"at s3://myapp-no-such-bucket/runs/{run_id}/make/1/" in message and "failed" in message, message


def test_two_burst_worker_processes_configured_by_environment_pass_files(
    services: Any, s3: S3Server, tmp_path: Path
) -> None:
    """`myapp worker --burst` processes, each with its own MYAPP_HOME and MYAPP_WORKFLOW_SPACE and the
    repository given as MYAPP_ARTIFACT_* variables: the second runs the retried consumer after the
    first one's home and workflow space are gone."""
    run_id = start(services, save(services, PIPELINE.replace("name: s3-pass", "name: burst-pass")))

    def burst(home: Path) -> None:
        env = worker_env(make_settings(home, services.settings.database_url), "filesystem://")
        env.update(s3.env("burst"), MYAPP_REDIS_URL="")
        done = subprocess.run(
            [sys.executable, "-m", "myapp", "worker", "--burst"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr

    burst(tmp_path / "a")  # runs `make`, then the first try of `use` (which fails on purpose)
    assert detail(services, run_id)["by_name"]["use"]["state"] == "failed"
    shutil.rmtree(tmp_path / "a")
    services.runs.retry_run(run_id, services.clock.now())
    burst(tmp_path / "b")
    run = detail(services, run_id)
    assert run["state"] == "succeeded", run
    assert (
        tmp_path / "b" / "workflow_space" / str(run_id) / "use" / "2" / "inputs" / "model" / "model" / "empty"
    ).is_dir()
    assert f"burst/{run_id}/make/1/model/model/.myapp-tree.tar.gz" in s3.keys(f"burst/{run_id}/")
