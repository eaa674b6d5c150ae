"""REST for runs under /api/v1/runs/: list, get, logs, stop, retry, copy, mark. Artifacts: artifact_api.py.

Thin: parse the request, call the same store methods the CLI uses, map domain errors (web/api.py).
"""

from __future__ import annotations

from typing import Any

from flask import Response, request
from flask_appbuilder.api import BaseApi, expose
from flask_appbuilder.security.decorators import protect

from myapp.core.authz import Action
from myapp.core.errors import NotFound, SpecError
from myapp.core.states import RunState
from myapp.db.run_views import RunFilter, run_count, run_detail, run_rows
from myapp.logs.attempt_logs import LogKey, LogLine
from myapp.web.access import check_run, run_token_or_protect, visible_projects
from myapp.web.api import domain_errors, query_instant, services, user_id, user_name

LOG_PAGE = 5000  # log lines per response at most


def log_entry(line: LogLine) -> dict[str, Any]:
    """Return one stored log line as JSON: its UTC instant (ms), its stream, its text."""
    at = f"{line.at:%Y-%m-%dT%H:%M:%S}.{line.at.microsecond // 1000:03d}Z" if line.at else None
    return {"at": at, "stream": line.stream.value, "text": line.text}


class RunApi(BaseApi):
    resource_name = "runs"
    class_permission_name = "Runs"
    method_permission_name = {
        "list": "read",
        "get": "read",
        "logs": "read",
        "stop": "write",
        "retry": "write",
        "retry_slice": "write",
        "copy": "write",
        "mark": "write",
    }
    openapi_spec_tag = "Runs"

    @expose("/", methods=["GET"])
    @protect()
    @domain_errors
    def list(self) -> Response:
        """List runs, newest first (filters: pipeline_id, state, trigger, since/until on the execution
        date; page with limit/offset; `total`: how many match).
        ---
        get:
          parameters:
          - {in: query, name: pipeline_id, schema: {type: integer}}
          - {in: query, name: state, schema: {type: string}}
          - {in: query, name: trigger, schema: {type: string}}
          - {in: query, name: since, schema: {type: string}}
          - {in: query, name: until, schema: {type: string}}
          - {in: query, name: limit, schema: {type: integer}}
          - {in: query, name: offset, schema: {type: integer}}
          responses:
            200: {description: Runs and the total}
            400: {description: Bad date}
        """
        limit = min(max(request.args.get("limit", 50, type=int) or 50, 1), 500)
        where = RunFilter(
            pipeline_id=request.args.get("pipeline_id", type=int),
            state=request.args.get("state"),
            trigger=request.args.get("trigger"),
            project_ids=visible_projects(),
            since=query_instant("since"),
            until=query_instant("until"),
        )
        with services().db.read() as s:
            rows = run_rows(
                s,
                pipeline_id=where.pipeline_id,
                state=where.state,
                trigger=where.trigger,
                limit=limit,
                offset=max(request.args.get("offset", 0, type=int) or 0, 0),
                project_ids=where.project_ids,
                since=where.since,
                until=where.until,
            )
            total = run_count(s, where) if request.args.get("total", "1") != "0" else None
        return self.response(200, result=rows, total=total)

    @expose("/<int:pk>", methods=["GET"])
    @run_token_or_protect
    @domain_errors
    def get(self, pk: int) -> Response:
        """Get a run with its task instances and attempts (a user, or that run's MYAPP_TOKEN while it runs).
        ---
        get:
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          responses:
            200: {description: Run}
            401: {description: Not signed in, or a run token of another or a finished run}
            404: {description: Not found}
        """
        check_run(pk, Action.READ)
        with services().db.read() as s:
            return self.response(200, result=run_detail(s, pk))

    @expose("/<int:pk>/logs", methods=["GET"])
    @run_token_or_protect
    @domain_errors
    def logs(self, pk: int) -> Response:
        """Read an attempt's log from line `offset` (live while running, archived after; run token allowed).
        ---
        get:
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          - {in: query, name: task, required: true, schema: {type: string}}
          - {in: query, name: try, schema: {type: integer}}
          - {in: query, name: offset, schema: {type: integer}}
          responses:
            200: {description: Lines}
            404: {description: Not found}
        """
        check_run(pk, Action.READ)
        task = request.args.get("task", "")
        with services().db.read() as s:
            detail = run_detail(s, pk)
        ti = next((t for t in detail["tasks"] if t["name"] == task), None)
        if ti is None:
            raise NotFound(f"task {task!r} not found in run {pk}")
        try_number = request.args.get("try", type=int) or ti["try_number"]
        offset = max(request.args.get("offset", 0, type=int) or 0, 0)
        entries, finished = services().logs.entries(LogKey(pk, task, try_number), offset)
        if len(entries) > LOG_PAGE:  # bounded: the next call continues from the returned offset
            entries, finished = entries[:LOG_PAGE], False
        return self.response(
            200,
            lines=[e.plain for e in entries],
            offset=offset + len(entries),
            finished=finished,
            try_number=try_number,
            entries=[log_entry(e) for e in entries],
        )

    def _act(self, pk: int, action: str) -> Response:
        check_run(pk, Action.RUN)
        svc, now = services(), services().clock.now()
        if action == "stop":
            svc.runs.stop_run(pk, now, by=user_name())
        elif action == "retry":
            svc.runs.retry_run(pk, now)
        return self.response(200, id=pk, message=f"{action} accepted")

    @expose("/<int:pk>/stop", methods=["POST"])
    @protect()
    @domain_errors
    def stop(self, pk: int) -> Response:
        """Stop a run.
        ---
        post:
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          responses:
            200: {description: Stopped}
            404: {description: Not found}
            409: {description: Already finished}
        """
        return self._act(pk, "stop")

    @expose("/<int:pk>/retry", methods=["POST"])
    @protect()
    @domain_errors
    def retry(self, pk: int) -> Response:
        """Retry a finished run from its failures (same run; succeeded tasks are kept).
        ---
        post:
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          responses:
            200: {description: Retrying}
            404: {description: Not found}
            409: {description: Not retryable}
        """
        return self._act(pk, "retry")

    @expose("/<int:pk>/slices/<name>/retry", methods=["POST"])
    @protect()
    @domain_errors
    def retry_slice(self, pk: int, name: str) -> Response:
        """Retry one failed slice (`train[3]`, URL-encoded) of a finished run: it runs again alone,
        its sliced task gathers again, and what that task held back follows (docs/rules.md R15).
        ---
        post:
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          - {in: path, name: name, required: true, schema: {type: string}}
          responses:
            200: {description: Retrying}
            404: {description: No such run or slice}
            409: {description: Not retryable (the run is unfinished, the slice or its task did not fail)}
        """
        check_run(pk, Action.RUN)
        services().runs.retry_slice(pk, name, services().clock.now())
        return self.response(200, id=pk, task=name, message=f"retry of {name} accepted")

    @expose("/<int:pk>/copy", methods=["POST"])
    @protect()
    @domain_errors
    def copy(self, pk: int) -> Response:
        """Start a new run with the same version and (edited) parameters.
        ---
        post:
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          responses:
            201: {description: New run}
            404: {description: Not found}
        """
        check_run(pk, Action.RUN)
        body = request.get_json(silent=True) or {}
        params = body.get("params") if isinstance(body, dict) else None
        if params is not None and not isinstance(params, dict):
            raise SpecError("params", "expected an object of NAME: VALUE")
        svc = services()
        new_id = svc.runs.copy_run(
            pk,
            svc.clock.now(),
            {str(k): str(v) for k, v in (params or {}).items()},
            user_id=user_id(),
            runner=user_name(),
        )
        return self.response(201, id=new_id)

    @expose("/<int:pk>/mark", methods=["POST"])
    @protect()
    @domain_errors
    def mark(self, pk: int) -> Response:
        """Mark a finished run succeeded or failed (body: {"state": ...}).
        ---
        post:
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          responses:
            200: {description: Marked}
            400: {description: Bad state}
            409: {description: Not finished}
        """
        check_run(pk, Action.RUN)
        body = request.get_json(silent=True) or {}
        state = body.get("state") if isinstance(body, dict) else None
        if state not in ("succeeded", "failed"):
            raise SpecError("state", "must be succeeded or failed")
        svc = services()
        svc.runs.mark_run(pk, RunState(state), svc.clock.now(), by=user_name())
        return self.response(200, id=pk, state=state)


def register(appbuilder: Any) -> None:
    """Add the RunApi to the app."""
    appbuilder.add_api(RunApi)
