"""REST API under /api/v1 (pipelines, runs, templates) on Flask-AppBuilder's BaseApi.

Thin: parse the request, call the same store methods the CLI and the daemon use, turn domain
errors into clean 4xx JSON (never a 500 or SQL text). FAB generates the OpenAPI document.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from flask import Response, current_app, g, request
from flask_appbuilder.api import BaseApi, expose
from flask_appbuilder.security.decorators import protect

from myapp.core.authz import Action, Forbidden
from myapp.core.debug_inputs import require_complete
from myapp.core.errors import Conflict, MyappError, NotFound, SpecError
from myapp.core.pipeline_spec import parse_pipeline
from myapp.core.states import RunState, Trigger
from myapp.core.values import NewRun
from myapp.db.debug_source import debug_plan
from myapp.db.pipeline_store import SpecErrors
from myapp.db.run_creation import request_run, version_task_count
from myapp.logs.attempt_logs import LogKey, LogLine
from myapp.scheduling.backfill_guard import guard, save_backfill
from myapp.services import Services
from myapp.views.runs import RunFilter, run_count, run_detail, run_rows
from myapp.web.access import (
    check_pipeline,
    check_project_write,
    check_run,
    guard_integer_arguments,
    refuse_bad_tokens_with_401,
    run_token_or_protect,
    shown_definition,
    visible_pipeline_ids,
    visible_projects,
)
from myapp.yaml_io import dump_yaml, load_yaml

F = TypeVar("F", bound=Callable[..., Any])
LOG_PAGE = 5000  # log lines per response at most


def log_entry(line: LogLine) -> dict[str, Any]:
    """Return one stored log line as JSON: its UTC instant (ms), its stream, its text."""
    at = f"{line.at:%Y-%m-%dT%H:%M:%S}.{line.at.microsecond // 1000:03d}Z" if line.at else None
    return {"at": at, "stream": line.stream.value, "text": line.text}


def services() -> Services:
    """Return the process's Services."""
    svc: Services = current_app.extensions["myapp"]
    return svc


def domain_errors(fn: F) -> F:
    """Map domain errors to 400/403/404/409 JSON responses."""
    @functools.wraps(fn)
    def wrapper(self: BaseApi, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(self, *args, **kwargs)
        except SpecErrors as exc:
            return self.response(400, message=str(exc), errors=[{"field": e.field, "message": e.message} for e in exc.errors])
        except SpecError as exc:
            return self.response(400, message=str(exc), errors=[{"field": exc.field, "message": exc.message}])
        except NotFound as exc:
            return self.response(404, message=str(exc))
        except Conflict as exc:  # a backfill above the threshold says how many runs (`backfill`)
            return self.response(409, message=str(exc), **getattr(exc, "details", {}))
        except Forbidden as exc:
            return self.response(403, message=str(exc))
        except MyappError as exc:
            return self.response(400, message=str(exc))
        except OverflowError:   # a date stored before schedules were limited to years 1970-2999
            return self.response(400, message="a date of this object is out of range (years 1970-2999)")
        except RecursionError:  # a definition stored before documents were limited to 64 levels
            return self.response(400, message="this definition is nested too deeply to be written out; "
                                              "save a version nested at most 64 levels")
    return wrapper  # type: ignore[return-value]


def query_instant(name: str) -> datetime | None:
    """Parse the query argument `name` as a date (YYYY-MM-DD, UTC midnight) or an ISO instant; 400 if neither."""
    text = request.args.get(name)
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise SpecError(name, f"{text[:40]!r} is not a date (YYYY-MM-DD) or an ISO 8601 instant") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def user_id() -> int | None:
    """Return the logged-in user's id."""
    user = getattr(g, "user", None)
    return getattr(user, "id", None)


def user_name() -> str:
    """Return the logged-in user's name (for {{ runner }})."""
    user = getattr(g, "user", None)
    return str(getattr(user, "username", "") or "")


def request_spec() -> Any:
    """Parse a pipeline from the request body: YAML text, or JSON."""
    if request.is_json:
        data = request.get_json(silent=True)
    else:
        try:
            data = load_yaml(request.get_data(as_text=True))
        except ValueError as exc:
            raise SpecError("body", str(exc)) from None
    if not isinstance(data, dict):
        raise SpecError("body", "a pipeline must be a mapping (YAML or JSON object)")
    return parse_pipeline(data, default_timezone=services().settings.timezone)


class PipelineApi(BaseApi):
    resource_name = "pipelines"
    class_permission_name = "Pipelines"
    method_permission_name = {"list": "read", "get": "read", "export": "read", "versions": "read",
                              "save": "write", "validate": "read", "create_run": "write"}
    openapi_spec_tag = "Pipelines"

    @expose("/", methods=["GET"])
    @protect()
    def list(self) -> Response:
        """List the pipelines of the projects you belong to (all for an admin).
        ---
        get:
          responses:
            200: {description: Pipelines}
        """
        visible = visible_pipeline_ids()
        rows = services().pipelines.summaries()
        return self.response(200, result=[r for r in rows if visible is None or r["id"] in visible])

    @expose("/", methods=["POST"])
    @protect()
    @domain_errors
    def save(self) -> Response:
        """Create or update a pipeline from YAML or JSON; a change makes a new version.
        ---
        post:
          parameters:
          - {in: query, name: confirm_backfill, schema: {type: boolean}}
          responses:
            200: {description: Saved}
            400: {description: Invalid pipeline}
            403: {description: You may not write in that project}
            409: {description: The schedule would start more backfill runs than backfill_confirm}
        """
        svc = services()
        spec = request_spec()
        check_project_write(spec.project)
        pinned = svc.pipelines.check(spec)
        confirmed = (request.args.get("confirm_backfill") or "").lower() in ("1", "true", "yes")
        guard(save_backfill(svc, pinned, svc.clock.now()), svc.settings.backfill_confirm, confirmed,
              "save again with ?confirm_backfill=1 to start it anyway")
        res = svc.pipelines.save(pinned, svc.clock.now(), user_id=user_id(),
                                 message=request.args.get("message", ""), checked=True)
        return self.response(200, id=res.pipeline_id, version=res.version, changed=res.created_version)

    @expose("/validate", methods=["POST"])
    @protect()
    @domain_errors
    def validate(self) -> Response:
        """Check a pipeline against every rule without saving.
        ---
        post:
          responses:
            200: {description: Valid}
            400: {description: Invalid pipeline}
        """
        services().pipelines.check(request_spec())
        return self.response(200, message="ok")

    @expose("/<int:pk>", methods=["GET"])
    @protect()
    @domain_errors
    def get(self, pk: int) -> Response:
        """Get a pipeline with its current definition.
        ---
        get:
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          - {in: query, name: version, schema: {type: integer}}
          responses:
            200: {description: Pipeline}
            404: {description: Not found}
        """
        check_pipeline(pk, Action.READ)
        svc = services()
        row = svc.pipelines.find(pk)
        version = request.args.get("version", type=int)
        definition = shown_definition(pk, svc.pipelines.export(pk, version))   # secrets masked for viewers
        return self.response(200, id=row.id, name=row.name, definition=definition,
                             schedule_error=row.schedule_error)

    @expose("/<int:pk>/export", methods=["GET"])
    @protect()
    @domain_errors
    def export(self, pk: int) -> Response:
        """Export a version as YAML.
        ---
        get:
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          - {in: query, name: version, schema: {type: integer}}
          responses:
            200: {description: YAML}
            404: {description: Not found}
        """
        check_pipeline(pk, Action.READ)
        version = request.args.get("version", type=int)
        text = dump_yaml(shown_definition(pk, services().pipelines.export(pk, version)))
        return Response(text, mimetype="application/yaml")

    @expose("/<int:pk>/versions", methods=["GET"])
    @protect()
    @domain_errors
    def versions(self, pk: int) -> Response:
        """List the versions of a pipeline.
        ---
        get:
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          responses:
            200: {description: Versions}
        """
        check_pipeline(pk, Action.READ)
        return self.response(200, result=services().pipelines.versions(pk))

    @expose("/<int:pk>/runs", methods=["POST"])
    @protect()
    @domain_errors
    def create_run(self, pk: int) -> Response:
        """Start a manual run, or a debug run of one task (body: params, debug_task, inputs).
        ---
        post:
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          responses:
            201: {description: Run started}
            202: {description: "Run accepted, state creating: a worker writes its task instances (more than run_inline_tasks)"}
            400: {description: Bad parameters}
            403: {description: You may not run it}
            404: {description: Not found}
        """
        check_pipeline(pk, Action.RUN)
        svc = services()
        body = request.get_json(silent=True) or {}
        if not isinstance(body, dict):
            raise SpecError("body", "expected a JSON object")
        params, debug_task = body.get("params") or {}, body.get("debug_task")
        if not isinstance(params, dict):
            raise SpecError("params", "expected an object of NAME: VALUE")
        if debug_task is not None and not isinstance(debug_task, str):
            raise SpecError("debug_task", "expected a task name")
        inputs = body.get("inputs") or {}
        if not isinstance(inputs, dict):
            raise SpecError("inputs", "expected an object of NAME: VALUE")
        debug_inputs = None
        if debug_task:  # upstream inputs not given come from the latest succeeded run (core/debug_inputs.py)
            spec, _ = svc.pipelines.spec(pk)
            with svc.db.read() as s:
                plan = debug_plan(s, pk, spec, debug_task, {str(k): str(v) for k, v in inputs.items()})
            require_complete(plan, spec.name)
            debug_inputs = plan.stored()
        now = svc.clock.now()
        new = NewRun(pipeline_id=pk, trigger=Trigger.DEBUG if debug_task else Trigger.MANUAL, execution_date=now,
                     params={str(k): str(v) for k, v in params.items()}, user_id=user_id(), runner=user_name(),
                     debug_task=debug_task, debug_inputs=debug_inputs)
        tasks = version_task_count(svc.runs, new)
        if tasks > svc.settings.run_inline_tasks:   # a worker writes its task instances (B15)
            return self.response(202, id=request_run(svc.runs, new, now, tasks), state=RunState.CREATING.value)
        return self.response(201, id=svc.runs.create_run(new, now))


class RunApi(BaseApi):
    resource_name = "runs"
    class_permission_name = "Runs"
    method_permission_name = {"list": "read", "get": "read", "logs": "read", "stop": "write",
                              "retry": "write", "copy": "write", "mark": "write"}
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
        where = RunFilter(pipeline_id=request.args.get("pipeline_id", type=int), state=request.args.get("state"),
                          trigger=request.args.get("trigger"), project_ids=visible_projects(),
                          since=query_instant("since"), until=query_instant("until"))
        with services().db.read() as s:
            rows = run_rows(s, pipeline_id=where.pipeline_id, state=where.state, trigger=where.trigger,
                            limit=limit, offset=max(request.args.get("offset", 0, type=int) or 0, 0),
                            project_ids=where.project_ids, since=where.since, until=where.until)
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
        return self.response(200, lines=[e.plain for e in entries], offset=offset + len(entries), finished=finished,
                             try_number=try_number, entries=[log_entry(e) for e in entries])

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
        new_id = svc.runs.copy_run(pk, svc.clock.now(), {str(k): str(v) for k, v in (params or {}).items()},
                                   user_id=user_id(), runner=user_name())
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


class TemplateApi(BaseApi):
    resource_name = "templates"
    class_permission_name = "Templates"
    method_permission_name = {"list": "read"}
    openapi_spec_tag = "Templates"

    @expose("/", methods=["GET"])
    @protect()
    def list(self) -> Response:
        """List the published task templates usable in your projects.
        ---
        get:
          responses:
            200: {description: Templates}
        """
        from myapp.db.template_review import masked_template_dict  # secret defaults never leave

        return self.response(200, result=[masked_template_dict(t)
                                          for t in services().templates.list(visible_projects())])


def register_apis(appbuilder: Any) -> None:
    """Add the REST APIs: these, then every `myapp/web/*_api.py` module's `register(appbuilder)`."""
    import importlib
    import pkgutil

    import myapp.web

    refuse_bad_tokens_with_401(appbuilder)
    guard_integer_arguments(current_app._get_current_object())  # type: ignore[attr-defined]
    for api in (PipelineApi, RunApi, TemplateApi):
        appbuilder.add_api(api)
    for info in sorted(pkgutil.iter_modules(myapp.web.__path__), key=lambda m: m.name):
        if info.name.endswith("_api"):
            importlib.import_module(f"myapp.web.{info.name}").register(appbuilder)
