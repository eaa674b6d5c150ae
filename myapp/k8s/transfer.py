"""Pods that move their own files (`k8s_artifact_transfer: pod`, docs/artifacts.md). Pure.

Without a volume shared by pods, watcher and workers, an attempt's pod fetches its file inputs and
uploads its file outputs itself, through **presigned URLs** the worker signs for that attempt only:
a GET per input object, a PUT per output key of this attempt (`RUN/TASK/TRY/OUTPUT/NAME`, the file's
object and the directory's archive, since which of the two the task writes is known only at its
end). The pod never holds credentials of the artifact repository; a URL grants one method on one
key until it expires (docs/security.md §10).

Two containers of `k8s_transfer_image` (any image with `python3`; stdlib only) run `SCRIPT`:
- `fetch-inputs`, an init container: downloads each input into `WORKDIR/inputs/NAME/` (a directory
  from its archive, refusing members outside the directory's own name, links kept as links);
- `upload-outputs`, a second container: waits for the entrypoint's exit-code file
  (`WORKDIR/.myapp/exit-code`), and when the task succeeded uploads each declared file output that
  exists (a file as one object, a directory as one gzipped tar holding `NAME/`, the layout of
  myapp/artifacts/repository.py), then exits; a failed upload fails the attempt (its words are the
  container's termination message).
The plans travel as JSON in env variables that come from the attempt's Secret (the URLs are secrets:
masked in logs, never in the pod spec).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

FETCHER = "fetch-inputs"
UPLOADER = "upload-outputs"
CONTAINERS = (FETCHER, UPLOADER)
INPUTS_ENV = "MYAPP_TRANSFER_INPUTS"
OUTPUTS_ENV = "MYAPP_TRANSFER_OUTPUTS"
EXIT_CODE_FILE = ".myapp/exit-code"  # in the working directory: written by the entrypoint when the task ended
EXIT_CODE_ENV = "MYAPP_EXIT_CODE_FILE"
MODES = ("watcher", "pod")


@dataclass(frozen=True)
class InputFetch:
    """One file input: where it lands in the pod (`directory/name`) and the URL of its object."""

    directory: str
    name: str
    url: str
    archive: bool  # a directory, stored as one archive holding `name/`


@dataclass(frozen=True)
class OutputUpload:
    """One file output: its source in the pod and the URLs of its two possible objects."""

    name: str
    source: str
    file_url: str
    archive_url: str


def inputs_env(fetches: Sequence[InputFetch]) -> str:
    """Return MYAPP_TRANSFER_INPUTS."""
    return json.dumps([{"dir": f.directory, "name": f.name, "url": f.url, "archive": f.archive} for f in fetches])


def outputs_env(uploads: Sequence[OutputUpload]) -> str:
    """Return MYAPP_TRANSFER_OUTPUTS."""
    return json.dumps(
        [{"name": u.name, "source": u.source, "file": u.file_url, "archive": u.archive_url} for u in uploads]
    )


def transfer_argv(mode: str) -> tuple[str, ...]:
    """Return the argv of a transfer container (`fetch` or `upload`)."""
    return ("python3", "-c", SCRIPT, mode)


def upload_failure(message: str) -> str:
    """Return the attempt's error when the pod could not upload its outputs."""
    return f"the pod could not upload its outputs: {message.strip()[:500]}"


SCRIPT = r"""
import io, json, os, sys, tarfile, tempfile, time, urllib.request

def fail(text):
    sys.stderr.write("myapp transfer: " + text + "\n")
    try:
        with open(os.environ.get("MYAPP_TERMINATION_LOG") or "/dev/termination-log", "w") as out:
            out.write(text)
    except OSError:
        pass
    sys.exit(1)

def request(url, method, body=None, size=None):
    req = urllib.request.Request(url, data=body, method=method)
    if size is not None:  # a body: never sent as a form (urllib's default type), which servers may parse
        req.add_header("Content-Length", str(size))
        req.add_header("Content-Type", "application/octet-stream")
    for attempt in range(5):
        if body is not None:
            body.seek(0)
        try:
            return urllib.request.urlopen(req, timeout=120)
        except urllib.error.HTTPError as exc:
            if exc.code < 500 or attempt == 4:
                raise
        except OSError:
            if attempt == 4:
                raise
        time.sleep(1 + attempt)

def fetch():
    for item in json.loads(os.environ.get("MYAPP_TRANSFER_INPUTS") or "[]"):
        name, where = item["name"], item["dir"]
        os.makedirs(where, exist_ok=True)
        try:
            with request(item["url"], "GET") as resp:
                if not item["archive"]:
                    with open(os.path.join(where, name), "wb") as out:
                        while True:
                            chunk = resp.read(1 << 20)
                            if not chunk:
                                break
                            out.write(chunk)
                    continue
                with tempfile.TemporaryFile() as spool:
                    while True:
                        chunk = resp.read(1 << 20)
                        if not chunk:
                            break
                        spool.write(chunk)
                    spool.seek(0)
                    with tarfile.open(fileobj=spool, mode="r:gz") as tar:
                        for member in tar:
                            parts = member.name.split("/")
                            if parts[0] != name or ".." in parts or member.name.startswith("/"):
                                fail("input %s: the archive holds %r, outside %r" % (where, member.name, name))
                            if member.islnk():
                                fail("input %s: hard link %r refused" % (where, member.name))
                            tar.extract(member, where, set_attrs=not member.issym())
        except SystemExit:
            raise
        except Exception as exc:
            fail("fetching input %s failed: %s" % (os.path.join(where, name), exc))

def upload():
    done = os.environ["MYAPP_EXIT_CODE_FILE"]
    while not os.path.exists(done):
        time.sleep(0.2)
    time.sleep(0.1)
    with open(done) as f:
        code = f.read().strip()
    if code != "0":
        return
    for item in json.loads(os.environ.get("MYAPP_TRANSFER_OUTPUTS") or "[]"):
        source = item["source"]
        if not os.path.lexists(source):
            continue
        try:
            if os.path.isdir(source) and not os.path.islink(source):
                with tempfile.TemporaryFile() as spool:
                    with tarfile.open(fileobj=spool, mode="w:gz") as tar:
                        tar.add(source, arcname=os.path.basename(source.rstrip("/")))
                    size = spool.tell()
                    spool.seek(0)
                    request(item["archive"], "PUT", spool, size).close()
            else:
                with open(source, "rb") as body:
                    request(item["file"], "PUT", body, os.fstat(body.fileno()).st_size).close()
        except Exception as exc:
            fail("output %s at %s: %s" % (item["name"], source, exc))

{"fetch": fetch, "upload": upload}[sys.argv[1]]()
"""
