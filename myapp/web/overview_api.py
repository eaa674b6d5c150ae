"""REST API of the overview pages under /api/v1/overview: the pipeline list, a pipeline's run grid,
the inputs a debug run would get, and the schedule toggle.

Thin: parse the request, call the read models (`myapp/db/pipeline_views.py`) and use-cases
(`myapp/scheduling/backfill_guard.py`, `myapp/db/debug_source.py`) the CLI calls too. Every answer is
bounded (a page of at most 200 pipelines, 25 runs per strip, 100 runs per grid).
"""

from __future__ import annotations

from typing import Any

from flask import Response, request
from flask_appbuilder.api import BaseApi, expose
from flask_appbuilder.security.decorators import protect
from flask_babel import get_locale

from myapp.core.authz import Action
from myapp.core.errors import SpecError
from myapp.db.debug_source import debug_plan
from myapp.db.pipeline_views import ListQuery, pipeline_list, run_grid
from myapp.scheduling.backfill_guard import set_enabled
from myapp.web.access import check_pipeline, visible_projects
from myapp.web.api import domain_errors, services, user_id


def _flag(name: str) -> bool:
    return (request.args.get(name) or "").lower() in ("1", "true", "yes")


class OverviewApi(BaseApi):
    resource_name = "overview"
    class_permission_name = "Pipelines"
    method_permission_name = {"pipelines": "read", "grid": "read", "debug_inputs": "read", "schedule": "write"}
    openapi_spec_tag = "Overview"

    @expose("/pipelines", methods=["GET"])
    @protect()
    @domain_errors
    def pipelines(self) -> Response:
        """List pipelines with their newest runs, next fire time and schedule in words (search, sort, page).
        ---
        get:
          parameters:
          - {in: query, name: q, schema: {type: string}}
          - {in: query, name: project_id, schema: {type: integer}}
          - {in: query, name: sort, schema: {type: string, enum: [name, -name, project, -project, next_fire, -next_fire, last_run, -last_run]}}
          - {in: query, name: limit, schema: {type: integer, maximum: 200}}
          - {in: query, name: offset, schema: {type: integer}}
          - {in: query, name: strip, schema: {type: integer, maximum: 25}}
          responses:
            200: {description: A page of pipelines and the total}
            400: {description: Bad sort key}
        """
        projects = visible_projects()
        lq = ListQuery(
            search=(request.args.get("q") or "")[:200],
            project_id=request.args.get("project_id", type=int),
            sort=request.args.get("sort") or "name",
            limit=request.args.get("limit", 50, type=int) or 50,
            offset=request.args.get("offset", 0, type=int) or 0,
            strip=request.args.get("strip", 10, type=int),
            project_ids=None if projects is None else tuple(projects),
        )
        svc = services()
        with svc.db.read() as s:
            rows, total = pipeline_list(s, lq, svc.clock.now(), str(get_locale() or "en"))
        return self.response(200, result=rows, total=total, backfill_confirm=svc.settings.backfill_confirm)

    @expose("/pipelines/<int:pk>/grid", methods=["GET"])
    @protect()
    @domain_errors
    def grid(self, pk: int) -> Response:
        """A pipeline's newest runs by its tasks: each cell a task instance's state and try number.
        ---
        get:
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          - {in: query, name: limit, schema: {type: integer, maximum: 100}}
          - {in: query, name: before, schema: {type: integer}}
          responses:
            200: {description: Runs, tasks and cells}
            404: {description: Not found}
        """
        check_pipeline(pk, Action.READ)
        with services().db.read() as s:
            data = run_grid(
                s, pk, limit=request.args.get("limit", 25, type=int) or 25, before=request.args.get("before", type=int)
            )
        return self.response(200, **data)

    @expose("/pipelines/<int:pk>/debug_inputs", methods=["GET"])
    @protect()
    @domain_errors
    def debug_inputs(self, pk: int) -> Response:
        """How each input of a task would be filled for a debug run, and which still need a value.
        ---
        get:
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          - {in: query, name: task, required: true, schema: {type: string}}
          responses:
            200: {description: The inputs, the run they come from, the missing ones}
            404: {description: Not found}
        """
        check_pipeline(pk, Action.READ)
        svc = services()
        spec, _ = svc.pipelines.spec(pk)
        with svc.db.read() as s:
            plan = debug_plan(s, pk, spec, request.args.get("task", ""), {})
        return self.response(200, **plan.as_dict())

    @expose("/pipelines/<int:pk>/schedule", methods=["POST"])
    @protect()
    @domain_errors
    def schedule(self, pk: int) -> Response:
        """Enable or disable (pause) a pipeline's cron schedule; a large backfill needs `confirm`.
        ---
        post:
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          requestBody:
            content:
              application/json:
                schema: {type: object, properties: {enabled: {type: boolean}, confirm: {type: boolean}}}
          responses:
            200: {description: Saved as a new version}
            409: {description: No cron schedule, or a backfill above backfill_confirm not confirmed}
        """
        check_pipeline(pk, Action.WRITE)
        body: Any = request.get_json(silent=True) or {}
        if not isinstance(body, dict) or not isinstance(body.get("enabled"), bool):
            raise SpecError("enabled", "expected true or false")
        svc = services()
        version, changed, backfill = set_enabled(
            svc,
            pk,
            body["enabled"],
            svc.clock.now(),
            user_id=user_id(),
            confirmed=body.get("confirm") is True,
            how="confirm to enable it anyway",
        )
        return self.response(
            200, id=pk, version=version, changed=changed, enabled=body["enabled"], backfill_runs=backfill.runs
        )


def register(appbuilder: Any) -> None:
    appbuilder.add_api(OverviewApi)
