"""Download a file output (an artifact) of a run: GET /api/v1/runs/ID/artifacts/TASK/OUTPUT.

A file is sent as it is; a directory as a gzipped tar of it (symbolic links kept as links, never
followed). The header `X-Myapp-Artifact` says which (`file` or `directory`) and
`X-Myapp-Artifact-Name` gives the stored name. Who may read the run may download (a run token of
the run too, while it runs). It is read through the artifact repository (myapp/artifacts/: this
server's disk or S3); only what that repository holds is served, so an artifact kept elsewhere
(another machine's disk) answers 404 and says so.

A list of files (a `files` output, or a sliced task's gathered file output: docs/rules.md R11, R15)
is one artifact per item: `?index=I` downloads item I as above; without it the answer is JSON,
`{"type": "files", "items": [NAME or null, ...]}` with `X-Myapp-Artifact: files`.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from flask import Response, jsonify, request, send_file
from flask_appbuilder.api import BaseApi, expose

from myapp.core.authz import Action
from myapp.core.errors import ArtifactError, NotFound
from myapp.db.run_views import run_detail
from myapp.web.access import check_run, run_token_or_protect
from myapp.web.api import domain_errors, services


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
          - {in: query, name: index, required: false, schema: {type: integer}}
          responses:
            200: {description: "The file, or a gzipped tar of the directory; for a list of files without index, JSON naming the items"}
            404: {description: No such run, task, file output, or not stored on this server}
            503: {description: The artifact repository (S3) cannot be reached}
        """
        check_run(pk, Action.READ)
        svc = services()
        with svc.db.read() as s:
            detail = run_detail(s, pk)
        found = next((t for t in detail["tasks"] if t["name"] == task), None)
        if found is None:
            raise NotFound(f"task {task!r} not found in run {pk}")
        produced = (found.get("outputs") or {}).get(output)
        if isinstance(produced, dict) and produced.get("type") == "files":
            paths = list(produced.get("paths") or [])
            index = request.args.get("index")
            if index is None:
                names = [None if p is None else PurePosixPath(str(p).rstrip("/")).name for p in paths]
                listing = jsonify({"type": "files", "items": names})
                listing.headers["X-Myapp-Artifact"] = "files"
                return listing
            if not index.isdigit() or int(index) >= len(paths) or paths[int(index)] is None:
                raise NotFound(
                    f"output {output!r} of task {task!r} of run {pk} has no item {index} ({len(paths)} items)"
                )
            produced = {"type": "file", "path": paths[int(index)]}
        if not isinstance(produced, dict) or produced.get("type") != "file":
            raise NotFound(f"task {task!r} of run {pk} has no file output {output!r} (yet)")
        location = str(produced.get("path", ""))
        try:
            if not svc.artifacts.holds(location):
                raise NotFound(
                    f"the artifact of task {task!r} of run {pk} is not stored on this server "
                    "or in its artifact repository"
                )
            download = svc.artifacts.open(location)
        except ArtifactError as exc:  # the store is down or refuses us: the server's trouble, not the request's
            return self.response(503, message=str(exc))
        kind, name = ("directory", f"{download.name}.tar.gz") if download.directory else ("file", download.name)
        response = send_file(
            download.stream,
            mimetype="application/gzip" if download.directory else "application/octet-stream",
            as_attachment=True,
            download_name=name,
        )
        response.headers.update({"X-Myapp-Artifact": kind, "X-Myapp-Artifact-Name": download.name})
        return response


def register(appbuilder: Any) -> None:
    """Add the artifact download API."""
    appbuilder.add_api(RunArtifactApi)
