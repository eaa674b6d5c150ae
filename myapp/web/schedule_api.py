"""REST API of the scheduler under /api/v1/schedules: schedule records and schedule previews.

Thin: parse the request, call the same functions as `myapp schedule records|preview`, turn
domain errors into 4xx JSON.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Response, request
from flask_appbuilder.api import BaseApi, expose
from flask_appbuilder.security.decorators import protect

from myapp.core.authz import Action
from myapp.core.cron import year_problem
from myapp.core.errors import SpecError
from myapp.core.states import RecordStatus
from myapp.db.schedule_store import record_count, record_rows, skip_rows
from myapp.scheduling.scheduler import preview_pipeline
from myapp.web.access import check_pipeline, visible_pipeline_ids
from myapp.web.api import domain_errors, query_instant, services

STATUSES = tuple(s.value for s in RecordStatus)


def _instant(text: str | None) -> datetime:
    if not text:
        return services().clock.now()
    try:
        value = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise SpecError("now", f"{text!r} is not an ISO 8601 instant") from None
    problem = year_problem(value)
    if problem:
        raise SpecError("now", problem)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


class ScheduleApi(BaseApi):
    resource_name = "schedules"
    class_permission_name = "Schedules"
    method_permission_name = {"records": "read", "preview": "read"}
    openapi_spec_tag = "Schedules"

    @expose("/records", methods=["GET"])
    @protect()
    @domain_errors
    def records(self) -> Response:
        """List schedule records newest first, with their runs, and the skipped spans.
        ---
        get:
          parameters:
          - {in: query, name: pipeline_id, schema: {type: integer}}
          - {in: query, name: status, schema: {type: string, enum: [waiting, launched, expired]}}
          - {in: query, name: limit, schema: {type: integer}}
          - {in: query, name: since, schema: {type: string}}
          - {in: query, name: until, schema: {type: string}}
          responses:
            200: {description: Records, their total and skipped spans}
            400: {description: Bad filter}
            404: {description: Pipeline not found}
        """
        svc = services()
        pipeline_id = request.args.get("pipeline_id", type=int)
        status = request.args.get("status") or None
        if status is not None and status not in STATUSES:
            raise SpecError("status", f"must be one of {', '.join(STATUSES)}")
        if pipeline_id is not None:
            check_pipeline(pipeline_id, Action.READ)
        limit = min(max(request.args.get("limit", 100, type=int) or 100, 1), 1000)
        since, until = query_instant("since"), query_instant("until")
        visible = None if pipeline_id is not None else visible_pipeline_ids()
        with svc.db.read() as s:
            if visible is None:
                rows = record_rows(s, pipeline_id=pipeline_id, status=status, limit=limit, since=since, until=until)
                total = record_count(s, pipeline_id=pipeline_id, status=status, since=since, until=until)
                skips = skip_rows(s, pipeline_id=pipeline_id, limit=limit)
            else:  # a non-admin: only the pipelines of their projects, merged newest first
                rows, skips, total = [], [], 0
                for pid in sorted(visible):
                    rows += record_rows(s, pipeline_id=pid, status=status, limit=limit, since=since, until=until)
                    total += record_count(s, pipeline_id=pid, status=status, since=since, until=until)
                    skips += skip_rows(s, pipeline_id=pid, limit=limit)
                rows = sorted(rows, key=lambda r: (r["execution_utc"], r["id"]), reverse=True)[:limit]
                skips = sorted(skips, key=lambda r: str(r["created_at"]), reverse=True)[:limit]
        return self.response(200, result=rows, skipped=skips, total=total)

    @expose("/preview/<int:pipeline_id>", methods=["GET"])
    @protect()
    @domain_errors
    def preview(self, pipeline_id: int) -> Response:
        """Show the next fire times of a pipeline and what a pass would do with each, in words.
        ---
        get:
          parameters:
          - {in: path, name: pipeline_id, required: true, schema: {type: integer}}
          - {in: query, name: n, schema: {type: integer}}
          - {in: query, name: now, schema: {type: string, format: date-time}}
          responses:
            200: {description: Preview}
            404: {description: Pipeline not found}
            409: {description: The pipeline has no cron schedule}
        """
        check_pipeline(pipeline_id, Action.READ)
        n = min(max(request.args.get("n", 10, type=int) or 10, 1), 500)
        data = preview_pipeline(services(), pipeline_id, _instant(request.args.get("now")), n)
        return self.response(200, **data)


def register(appbuilder: Any) -> None:
    appbuilder.add_api(ScheduleApi)
