"""Pods that move their own files (myapp/k8s/transfer.py): the transfer script run as the pod would
run it (python3 -c SCRIPT MODE), against a local HTTP server standing for presigned S3 URLs."""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from myapp.k8s.transfer import SCRIPT, InputFetch, OutputUpload, inputs_env, outputs_env, transfer_argv


@pytest.fixture
def store() -> Iterator[tuple[str, dict[str, bytes]]]:
    """An object store answering GET and PUT on any path (what presigned URLs allow, one key each)."""
    objects: dict[str, bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            objects[self.path] = self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.end_headers()

        def do_GET(self) -> None:
            body = objects.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", objects
    server.shutdown()


def run(mode: str, env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    tlog = tmp_path / "termination"
    argv = [sys.executable, *transfer_argv(mode)[1:]]
    return subprocess.run(
        argv, env={**env, "MYAPP_TERMINATION_LOG": str(tlog)}, capture_output=True, text=True, timeout=60
    )


def test_upload_then_fetch_a_file_and_a_directory(store: tuple[str, dict[str, bytes]], tmp_path: Path) -> None:
    url, objects = store
    work = tmp_path / "produce"
    (work / "model" / "sub").mkdir(parents=True)
    (work / "model" / "empty").mkdir()
    (work / "model" / "sub" / "w.txt").write_text("weights")
    (work / "model" / "latest").symlink_to("sub/w.txt")
    (work / "msg.txt").write_text("hello\n")
    (work / "rc").write_text("0\n")
    uploads = [
        OutputUpload("msg", str(work / "msg.txt"), f"{url}/msg/msg.txt", f"{url}/msg/msg.txt/a"),
        OutputUpload("model", str(work / "model"), f"{url}/model/model", f"{url}/model/model/a"),
        OutputUpload("gone", str(work / "missing"), f"{url}/gone/x", f"{url}/gone/x/a"),
    ]
    done = run(
        "upload", {"MYAPP_EXIT_CODE_FILE": str(work / "rc"), "MYAPP_TRANSFER_OUTPUTS": outputs_env(uploads)}, tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert sorted(objects) == ["/model/model/a", "/msg/msg.txt"]  # a missing output uploads nothing
    names = tarfile.open(fileobj=io.BytesIO(objects["/model/model/a"]), mode="r:gz").getnames()
    assert sorted(names) == ["model", "model/empty", "model/latest", "model/sub", "model/sub/w.txt"]

    into = tmp_path / "consume"
    fetches = [
        InputFetch(str(into / "inputs" / "msg"), "msg.txt", f"{url}/msg/msg.txt", False),
        InputFetch(str(into / "inputs" / "model"), "model", f"{url}/model/model/a", True),
    ]
    done = run("fetch", {"MYAPP_TRANSFER_INPUTS": inputs_env(fetches)}, tmp_path)
    assert done.returncode == 0, done.stderr
    assert (into / "inputs" / "msg" / "msg.txt").read_text() == "hello\n"
    model = into / "inputs" / "model" / "model"
    assert (model / "latest").is_symlink() and (model / "latest").read_text() == "weights"
    assert (model / "empty").is_dir()


def test_a_failed_task_uploads_nothing_and_a_hostile_archive_is_refused(
    store: tuple[str, dict[str, bytes]], tmp_path: Path
) -> None:
    url, objects = store
    (tmp_path / "f").write_text("x")
    (tmp_path / "rc").write_text("3\n")
    env = {
        "MYAPP_EXIT_CODE_FILE": str(tmp_path / "rc"),
        "MYAPP_TRANSFER_OUTPUTS": outputs_env([OutputUpload("f", str(tmp_path / "f"), f"{url}/f", f"{url}/f/a")]),
    }
    assert run("upload", env, tmp_path).returncode == 0 and objects == {}

    evil = io.BytesIO()
    with tarfile.open(fileobj=evil, mode="w:gz") as tar:
        info = tarfile.TarInfo("../escape.txt")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    objects["/evil"] = evil.getvalue()
    fetches = [InputFetch(str(tmp_path / "in"), "model", f"{url}/evil", True)]
    done = run("fetch", {"MYAPP_TRANSFER_INPUTS": inputs_env(fetches)}, tmp_path)
    assert done.returncode == 1 and "outside 'model'" in done.stderr
    assert not (tmp_path / "escape.txt").exists()
    assert "outside 'model'" in (tmp_path / "termination").read_text()
    missing = [InputFetch(str(tmp_path / "in2"), "x", f"{url}/nothing", False)]
    done = run("fetch", {"MYAPP_TRANSFER_INPUTS": inputs_env(missing)}, tmp_path)
    assert done.returncode == 1 and "fetching input" in done.stderr
    assert SCRIPT.count("urlopen") == 1
