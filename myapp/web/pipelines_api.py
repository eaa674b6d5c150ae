"""REST for pipelines under /api/v1/pipelines/: list, save, validate, get, export, versions, start a run.

Thin: parse the request, call the same store methods the CLI uses, map domain errors (web/api.py).
"""

from __future__ import annotations

from typing import Any

from flask import Response, request
from flask_appbuilder.api import BaseApi, expose
from flask_appbuilder.security.decorators import protect

from myapp.core.authz import Action
from myapp.core.debug_inputs import require_complete
from myapp.core.errors import SpecError
from myapp.core.pipeline_spec import parse_pipeline
from myapp.core.states import RunState, Trigger
from myapp.core.values import NewRun
from myapp.db.debug_source import debug_plan
from myapp.db.run_creation import request_run, version_task_count
from myapp.scheduling.backfill_guard import guard, save_backfill
from myapp.web.access import check_pipeline, check_project_write, shown_definition, visible_pipeline_ids
from myapp.web.api import domain_errors, services, user_id, user_name
from myapp.yaml_io import dump_yaml, load_yaml


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
    method_permission_name = {
        "list": "read",
        "get": "read",
        "export": "read",
        "versions": "read",
        "save": "write",
        "validate": "read",
        "create_run": "write",
    }
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
        guard(
            save_backfill(svc, pinned, svc.clock.now()),
            svc.settings.backfill_confirm,
            confirmed,
            "save again with ?confirm_backfill=1 to start it anyway",
        )
        res = svc.pipelines.save(
            pinned, svc.clock.now(), user_id=user_id(), message=request.args.get("message", ""), checked=True
        )
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
        definition = shown_definition(pk, svc.pipelines.export(pk, version))  # secrets masked for viewers
        return self.response(200, id=row.id, name=row.name, definition=definition, schedule_error=row.schedule_error)

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
        new = NewRun(
            pipeline_id=pk,
            trigger=Trigger.DEBUG if debug_task else Trigger.MANUAL,
            execution_date=now,
            params={str(k): str(v) for k, v in params.items()},
            user_id=user_id(),
            runner=user_name(),
            debug_task=debug_task,
            debug_inputs=debug_inputs,
        )
        tasks = version_task_count(svc.runs, new)
        if tasks > svc.settings.run_inline_tasks:  # a worker writes its task instances (B15)
            return self.response(202, id=request_run(svc.runs, new, now, tasks), state=RunState.CREATING.value)
        return self.response(201, id=svc.runs.create_run(new, now))


def register(appbuilder: Any) -> None:
    """Add the PipelineApi to the app."""
    appbuilder.add_api(PipelineApi)
