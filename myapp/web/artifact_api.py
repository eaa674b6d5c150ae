"""Download a file output (an artifact) of a run: GET /api/v1/runs/ID/artifacts/TASK/OUTPUT.

A file is sent as it is; a directory as a gzipped tar of it (symbolic links kept as links, never
followed). The header `X-Myapp-Artifact` says which (`file` or `directory`) and
`X-Myapp-Artifact-Name` gives the stored name. Who may read the run may download (a run token of
the run too, while it runs); only paths inside this server's artifact store are served, so an
artifact kept elsewhere (another machine's store) answers 404 and says so.
"""

from __future__ import annotations

import tarfile
import tempfile
from pathlib import Path
from typing import Any

from flask import Response, send_file
from flask_appbuilder.api import BaseApi, expose

from myapp.core.authz import Action
from myapp.core.errors import NotFound
from myapp.views.runs import run_detail
from myapp.web.access import check_run, run_token_or_protect
from myapp.web.api import domain_errors, services

SPOOL = 16 * 1024 * 1024   # a directory's archive stays in memory up to this size, then on disk


class RunArtifactApi(BaseApi):
    resource_name = "runs"
    class_permission_name = "Runs"
    method_permission_name = {"artifact": "read"}
    openapi_spec_tag = "Runs"

    @expose("/<int:pk>/artifacts/<task>/<output>", methods=["GET"])
    @run_token_or_protect
    @domain_errors
    def artifact(self, pk: int, task: str, output: str) -> Response:
        """Download a file output of a task of a run (a directory comes as a .tar.gz).
        ---
        get:
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          - {in: path, name: task, required: true, schema: {type: string}}
          - {in: path, name: output, required: true, schema: {type: string}}
          responses:
            200: {description: The file, or a gzipped tar of the directory}
            404: {description: No such run, task, file output, or not stored on this server}
        """
        check_run(pk, Action.READ)
        svc = services()
        with svc.db.read() as s:
            detail = run_detail(s, pk)
        found = next((t for t in detail["tasks"] if t["name"] == task), None)
        if found is None:
            raise NotFound(f"task {task!r} not found in run {pk}")
        produced = (found.get("outputs") or {}).get(output)
        if not isinstance(produced, dict) or produced.get("type") != "file":
            raise NotFound(f"task {task!r} of run {pk} has no file output {output!r} (yet)")
        path = stored_path(Path(str(produced.get("path", ""))), svc.settings.artifacts_dir, pk, task)
        if path.is_dir():
            return _directory(path)
        response = send_file(path, mimetype="application/octet-stream", as_attachment=True, download_name=path.name)
        response.headers.update({"X-Myapp-Artifact": "file", "X-Myapp-Artifact-Name": path.name})
        return response


def stored_path(path: Path, store: Path, run_id: int, task: str) -> Path:
    """Return `path` when it is inside this server's artifact store and exists; NotFound otherwise."""
    real, root = path.resolve(), store.resolve()
    if root not in real.parents or not real.exists():
        raise NotFound(f"the artifact of task {task!r} of run {run_id} is not stored on this server")
    return real


def _directory(path: Path) -> Response:
    spool: Any = tempfile.SpooledTemporaryFile(max_size=SPOOL)
    with tarfile.open(fileobj=spool, mode="w:gz") as archive:
        archive.add(path, arcname=path.name)   # links are archived as links (dereference=False)
    spool.seek(0)
    response = send_file(spool, mimetype="application/gzip", as_attachment=True, download_name=f"{path.name}.tar.gz")
    response.headers.update({"X-Myapp-Artifact": "directory", "X-Myapp-Artifact-Name": path.name})
    return response


def register(appbuilder: Any) -> None:
    """Add the artifact download API."""
    appbuilder.add_api(RunArtifactApi)
