"""REST for user templates and their review, under /api/v1/user_templates/ (docs/rules.md P6).

Create and edit a template (template.yaml as JSON or YAML), submit it, approve it or reject it
with a reason, read its history. The rules live in myapp/db/template_review.py and
myapp/web/authz.py; this module parses requests and maps errors to 4xx (Forbidden -> 403,
not visible -> 404, wrong state -> 409). The read-only catalog of published templates stays at
/api/v1/templates/ (catalog_api.py). Secret defaults are masked in every answer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import Response, request
from flask_appbuilder.api import BaseApi, expose
from flask_appbuilder.security.decorators import protect

from myapp.builtins.kinds import kind_errors
from myapp.core.errors import NotFound, SpecError
from myapp.core.states import TemplateStatus
from myapp.db.template_review import UserTemplates
from myapp.web.api import domain_errors, services
from myapp.web.authz import Actor, current_actor
from myapp.yaml_io import load_yaml

F = TypeVar("F", bound=Callable[..., Any])
SCOPES = ("visible", "mine", "review")
STEP_STATUS = {
    "submit": TemplateStatus.PENDING.value,
    "approve": TemplateStatus.PUBLISHED.value,
    "reject": TemplateStatus.REJECTED.value,
}


def request_template() -> tuple[dict[str, Any], str | None]:
    """Return (template dict, project name) from a JSON or YAML body.

    JSON: the template itself, or {"template": {...}, "project": "name"}; YAML: the template.
    `?project=` works for both.
    """
    if request.is_json:
        body = request.get_json(silent=True)
    else:
        try:
            body = load_yaml(request.get_data(as_text=True))
        except SpecError as exc:
            raise SpecError("body", exc.message) from None
    if not isinstance(body, dict):
        raise SpecError("body", "a template must be a mapping (template.yaml as JSON or YAML)")
    project = request.args.get("project") or None
    if isinstance(body.get("template"), dict):
        project = str(body.get("project") or "") or project
        body = body["template"]
    return body, project


def json_field(name: str) -> str:
    """Return a text field of a JSON body (empty when absent)."""
    body = request.get_json(silent=True) or {}
    if not isinstance(body, dict):
        raise SpecError("body", "expected a JSON object")
    value = body.get(name, "")
    return value if isinstance(value, str) else str(value)


def store() -> UserTemplates:
    """Return the use-cases on this process's database."""
    svc = services()
    return UserTemplates(svc.db, kind_check=kind_errors, self_approval=svc.settings.template_self_approval)


def actor() -> Actor:
    """Return the signed-in user with their project roles."""
    with services().db.read() as s:
        return current_actor(s)


class UserTemplateApi(BaseApi):
    resource_name = "user_templates"
    class_permission_name = "Templates"
    method_permission_name = {
        "list": "read",
        "get": "read",
        "history": "read",
        "create": "write",
        "edit": "write",
        "submit": "write",
        "approve": "write",
        "reject": "write",
    }
    openapi_spec_tag = "Templates"
    allow_browser_login = True

    @expose("/", methods=["GET"])
    @protect()
    @domain_errors
    def list(self) -> Response:
        """List templates: scope=visible (default), mine or review; status filters.
        ---
        get:
          parameters:
          - {in: query, name: scope, schema: {type: string, enum: [visible, mine, review]}}
          - {in: query, name: status, schema: {type: string, enum: [draft, pending, published, rejected]}}
          responses:
            200: {description: Templates}
        """
        scope = request.args.get("scope", "visible")
        status = request.args.get("status") or None
        if scope not in SCOPES:
            raise SpecError("scope", f"must be one of {', '.join(SCOPES)}")
        if status is not None and status not in {s.value for s in TemplateStatus}:
            raise SpecError("status", f"must be one of {', '.join(s.value for s in TemplateStatus)}")
        return self.response(200, result=store().list_for(actor(), scope=scope, status=status))

    @expose("/", methods=["POST"])
    @protect()
    @domain_errors
    def create(self) -> Response:
        """Create a draft template (template.yaml as JSON or YAML; optional project).
        ---
        post:
          responses:
            201: {description: Created}
            400: {description: Invalid template}
            409: {description: Name taken}
        """
        data, project = request_template()
        new_id = store().create(actor(), data, services().clock.now(), project=project)
        return self.response(201, result=store().get(actor(), new_id))

    @expose("/<int:pk>", methods=["GET"])
    @protect()
    @domain_errors
    def get(self, pk: int) -> Response:
        """Get one template (404 when you may not see it).
        ---
        get:
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          responses:
            200: {description: Template}
            404: {description: Not found}
        """
        return self.response(200, result=store().get(actor(), pk))

    @expose("/<int:pk>", methods=["PUT"])
    @protect()
    @domain_errors
    def edit(self, pk: int) -> Response:
        """Replace an unpublished template's definition (owner only).
        ---
        put:
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          responses:
            200: {description: Saved}
            403: {description: Not the owner}
            409: {description: Published}
        """
        data, _ = request_template()
        store().edit(actor(), pk, data, services().clock.now())
        return self.response(200, result=store().get(actor(), pk))

    def _step(self, pk: int, step: str) -> Response:
        who, now, templates = actor(), services().clock.now(), store()
        if step == "submit":
            templates.submit(who, pk, now, json_field("message"))
        elif step == "approve":
            templates.approve(who, pk, now, json_field("comment"), scope=json_field("scope") or None)
        else:
            templates.reject(who, pk, json_field("reason"), now)
        try:
            return self.response(200, result=templates.get(who, pk))
        except NotFound:  # a rejected template goes back to its owner: the reviewer no longer sees it
            return self.response(200, result={"id": pk, "status": STEP_STATUS[step]})

    @expose("/<int:pk>/submit", methods=["POST"])
    @protect()
    @domain_errors
    def submit(self, pk: int) -> Response:
        """Submit for review (owner only; body: {"message": ...} optional).
        ---
        post:
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          responses:
            200: {description: Pending}
            409: {description: Wrong state}
        """
        return self._step(pk, "submit")

    @expose("/<int:pk>/approve", methods=["POST"])
    @protect()
    @domain_errors
    def approve(self, pk: int) -> Response:
        """Publish a pending template: body {"scope": "project"|"all", "comment": ...} (scope required).

        An admin or an owner of the template's project, never its submitter (unless the setting
        template_self_approval allows it); scope `project` publishes it to its project only, `all`
        (admins only) to every project.
        ---
        post:
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          responses:
            200: {description: Published}
            400: {description: No or wrong scope}
            403: {description: Not a reviewer, the submitter, or scope all by a non-admin}
            409: {description: Not pending}
        """
        return self._step(pk, "approve")

    @expose("/<int:pk>/reject", methods=["POST"])
    @protect()
    @domain_errors
    def reject(self, pk: int) -> Response:
        """Reject a pending template with a reason (body: {"reason": ...}, required).
        ---
        post:
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          responses:
            200: {description: Rejected}
            400: {description: No reason}
            403: {description: Not a reviewer}
            409: {description: Not pending}
        """
        return self._step(pk, "reject")

    @expose("/<int:pk>/history", methods=["GET"])
    @protect()
    @domain_errors
    def history(self, pk: int) -> Response:
        """The template's review history, oldest first.
        ---
        get:
          parameters:
          - {in: path, name: pk, required: true, schema: {type: integer}}
          responses:
            200: {description: History}
            404: {description: Not found}
        """
        return self.response(200, result=store().history(actor(), pk))


def register(appbuilder: Any) -> None:
    """Add the user-template API."""
    appbuilder.add_api(UserTemplateApi)
