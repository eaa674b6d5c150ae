"""User templates (docs/rules.md P6, the reference's 模块管理/模块审核): create, edit, submit, review.

A user's template starts as a `draft` visible to its owner only. The owner submits it
(`pending`); an admin, or an owner of the template's project, approves it (`published`, usable in
pipelines as `name@version`) or rejects it with a reason (`rejected`: the owner fixes it and
submits again). Published versions are immutable; a change is a new version. Every step is kept
as a TemplateReview row (the history). A name belongs to its first owner (or to the plugin that
registered it), so nobody can publish a newer `shell`.

Approval (issue 13, B13): whoever submitted a template may not approve it (four eyes) unless the
setting `template_self_approval` allows it (single-admin installs), and the reviewer chooses the
**publication scope**: `project` (usable and visible in the template's project only) or `all`
(every project; an admin only). A personal template (no project) can only be published to all.

Visibility: published -> every signed-in user (scope `all`) or the project's members (scope
`project`), admins always; draft/rejected -> the owner (and admins); pending -> the owner and
those who may review it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from myapp.core.authz import Action, Actor, Forbidden, ProjectRole, can
from myapp.core.errors import Conflict, NotFound, SpecError
from myapp.core.model import TemplateSpec
from myapp.core.params import mask, param_def_to_dict
from myapp.core.states import TEMPLATE, TemplateStatus
from myapp.core.templates import KindCheck, parse_template, template_to_dict
from myapp.db.sealed import seal
from myapp.db.session import Database
from myapp.db.tables import USERS, Project, TaskTemplate, TemplateReview

USER_SOURCE = "user"
MAX_REASON = 4000
SCOPES = ("project", "all")


def transition(current: str, to: TemplateStatus, ref: str) -> TemplateStatus:
    """Return `to` when the table (core/states.py TEMPLATE) allows it from `current`; Conflict (saying why) otherwise."""
    state = TemplateStatus(current)
    if to not in TEMPLATE.transitions[state]:
        hint = " (published versions are immutable: create a new version)" if state is TemplateStatus.PUBLISHED else ""
        raise Conflict(f"template {ref} is {state.value}; it cannot become {to.value}{hint}")
    return to


def masked_template_dict(spec: TemplateSpec) -> dict[str, object]:
    """Return template_to_dict with every secret parameter's default masked (for APIs and listings)."""
    secrets = [p for p in spec.parameters if p.type == "secret" and p.default not in (None, "")]
    if not secrets:
        return template_to_dict(spec)
    masked = tuple(replace(p, default=mask(p, p.default)) if p in secrets else p for p in spec.parameters)
    data = template_to_dict(replace(spec, parameters=()))
    data["parameters"] = {p.name: param_def_to_dict(p) for p in masked}
    return data


def may_see(actor: Actor, row: TaskTemplate) -> bool:
    """Return whether `actor` may see the template row (the visibility rule above)."""
    if actor.is_anonymous:
        return False
    if actor.is_admin or row.owner_id == actor.user_id:
        return True
    if row.status == TemplateStatus.PUBLISHED:
        return row.publish_scope != "project" or row.project_id in actor.projects
    return row.status == TemplateStatus.PENDING and may_review(actor, row)


def may_review(actor: Actor, row: TaskTemplate) -> bool:
    """Return whether `actor` may approve or reject the row: an admin, or an owner of its project."""
    return can(actor, Action.REVIEW, row.project_id)


class UserTemplates:
    """The use-cases of user templates; every method takes the acting user and `now`."""

    def __init__(self, db: Database, *, kind_check: KindCheck, self_approval: bool = False) -> None:
        self.db = db
        self.kind_check = kind_check  # myapp/builtins/kinds.py kind_errors, given by the entry point
        self.self_approval = self_approval

    # ----- writes ------------------------------------------------------------------------
    def create(self, actor: Actor, data: Mapping[str, Any], now: datetime, *, project: str | None = None) -> int:
        """Register a new draft from a template.yaml-shaped dict; return its id."""
        _require_signed_in(actor)
        spec = _parse(data, self.kind_check)
        with self.db.write() as s:
            project_id = _project_id(s, project, actor)
            if project_id is not None and not can(actor, Action.WRITE, project_id):
                raise Forbidden(f"you may not create templates in project {project!r}")
            _check_name(s, actor, spec, exclude_id=None)
            row = TaskTemplate(
                name=spec.name,
                version=spec.version,
                source=USER_SOURCE,
                status=TEMPLATE.initial.value,
                owner_id=actor.user_id,
                project_id=project_id,
                created_at=now,
            )
            _fill(row, spec, now)
            s.add(row)
            s.flush()
            _record(s, row.id, "create", "", actor, now)
            return row.id

    def edit(self, actor: Actor, template_id: int, data: Mapping[str, Any], now: datetime) -> None:
        """Replace an unpublished template's definition (owner only); a pending one goes back to draft."""
        spec = _parse(data, self.kind_check)
        with self.db.write() as s:
            row = self._owned(s, actor, template_id)
            row.status = transition(row.status, TemplateStatus.DRAFT, _ref(row)).value
            _check_name(s, actor, spec, exclude_id=row.id)
            row.name, row.version = spec.name, spec.version
            _fill(row, spec, now)
            _record(s, row.id, "edit", "", actor, now)

    def submit(self, actor: Actor, template_id: int, now: datetime, message: str = "") -> None:
        """Ask for review (owner only): draft or rejected -> pending."""
        with self.db.write() as s:
            row = self._owned(s, actor, template_id)
            row.status = transition(row.status, TemplateStatus.PENDING, _ref(row)).value
            row.updated_at = now
            _record(s, row.id, "submit", _reason(message, required=False), actor, now)

    def approve(
        self, actor: Actor, template_id: int, now: datetime, comment: str = "", *, scope: str | None = None
    ) -> None:
        """Publish a pending template to `scope` (project or all): an admin or an owner of its project,
        not its submitter."""
        reason = _reason(comment, required=False)
        with self.db.write() as s:
            row = self._reviewable(s, actor, template_id)
            row.publish_scope = self._check_approval(s, actor, row, scope)
            self._step(s, actor, row, TemplateStatus.PUBLISHED, reason, now)

    def reject(self, actor: Actor, template_id: int, reason: str, now: datetime) -> None:
        """Send a pending template back to its owner with a reason (required)."""
        text = _reason(reason, required=True)
        with self.db.write() as s:
            self._step(s, actor, self._reviewable(s, actor, template_id), TemplateStatus.REJECTED, text, now)

    def _reviewable(self, s: Session, actor: Actor, template_id: int) -> TaskTemplate:
        row = self._visible(s, actor, template_id, lock=True)
        if not may_review(actor, row):
            raise Forbidden(f"only an admin or an owner of the template's project may review {_ref(row)}")
        return row

    def _check_approval(self, s: Session, actor: Actor, row: TaskTemplate, scope: str | None) -> str:
        """Return the publication scope once the approval rules hold; raise otherwise."""
        transition(row.status, TemplateStatus.PUBLISHED, _ref(row))
        if scope not in SCOPES:
            where = "project (its project only) or all (every project)" if row.project_id else "all"
            raise SpecError("scope", f"choose where {_ref(row)} is published: {where}")
        if scope == "project" and row.project_id is None:
            raise SpecError("scope", f"{_ref(row)} belongs to no project: it can only be published to all")
        if scope == "all" and not actor.is_admin:
            raise Forbidden(f"only an admin may publish {_ref(row)} to every project; choose scope project")
        if not self.self_approval and actor.user_id == _submitter(s, row):
            raise Forbidden(
                f"you submitted {_ref(row)}: another reviewer must approve it "
                "(the setting template_self_approval allows it on single-admin installs)"
            )
        return scope

    def _step(
        self, s: Session, actor: Actor, row: TaskTemplate, to: TemplateStatus, reason: str, now: datetime
    ) -> None:
        row.status = transition(row.status, to, _ref(row)).value
        row.updated_at = now
        _record(s, row.id, "approve" if to is TemplateStatus.PUBLISHED else "reject", reason, actor, now)

    # ----- reads -------------------------------------------------------------------------
    def get(self, actor: Actor, template_id: int) -> dict[str, Any]:
        """Return one template as the API shows it (secrets masked); NotFound when not visible."""
        with self.db.read() as s:
            row = self._visible(s, actor, template_id)
            return _view(s, row, actor)

    def list_for(self, actor: Actor, *, scope: str = "visible", status: str | None = None) -> list[dict[str, Any]]:
        """Return templates: `visible` (all the actor may see), `mine`, or `review` (what the actor may review)."""
        _require_signed_in(actor)
        with self.db.read() as s:
            q = select(TaskTemplate).order_by(TaskTemplate.name, TaskTemplate.id)
            q = _scoped(q, actor, scope)
            if status:
                q = q.where(TaskTemplate.status == TemplateStatus(status).value)
            rows = [r for r in s.scalars(q).all() if may_see(actor, r)]
            return [_view(s, r, actor) for r in rows]

    def history(self, actor: Actor, template_id: int) -> list[dict[str, Any]]:
        """Return the template's steps, oldest first: create, edit, submit, approve, reject (with reasons)."""
        with self.db.read() as s:
            self._visible(s, actor, template_id)
            rows = s.execute(
                select(TemplateReview, USERS.c.username)
                .join(USERS, USERS.c.id == TemplateReview.user_id, isouter=True)
                .where(TemplateReview.template_id == template_id)
                .order_by(TemplateReview.at, TemplateReview.id)
            ).all()
            return [{"action": r.action, "reason": r.reason, "user": name, "at": r.at.isoformat()} for r, name in rows]

    # ----- helpers -----------------------------------------------------------------------
    def _visible(self, s: Session, actor: Actor, template_id: int, *, lock: bool = False) -> TaskTemplate:
        q = select(TaskTemplate).where(TaskTemplate.id == template_id)
        if lock:
            q = q.with_for_update(**self.db.lock_options())
        row: TaskTemplate | None = s.scalar(q)
        if row is None or not may_see(actor, row):
            raise NotFound(f"template {template_id} not found")
        return row

    def _owned(self, s: Session, actor: Actor, template_id: int) -> TaskTemplate:
        row = self._visible(s, actor, template_id, lock=True)
        if row.source != USER_SOURCE or row.owner_id != actor.user_id:
            raise Forbidden(f"only the owner may change template {_ref(row)}")
        return row


def _submitter(s: Session, row: TaskTemplate) -> int | None:
    """Return who asked for the current review: the user of the latest submit (else the owner)."""
    user_id = s.scalar(
        select(TemplateReview.user_id)
        .where(TemplateReview.template_id == row.id, TemplateReview.action == "submit")
        .order_by(TemplateReview.at.desc(), TemplateReview.id.desc())
        .limit(1)
    )
    return int(user_id) if user_id is not None else row.owner_id


def _require_signed_in(actor: Actor) -> None:
    if actor.is_anonymous:
        raise Forbidden("sign in first")


def _parse(data: Mapping[str, Any], kind_check: KindCheck) -> TemplateSpec:
    if not isinstance(data, Mapping):
        raise SpecError("body", "a template must be a mapping (template.yaml as JSON or YAML)")
    return parse_template(data, "request", kind_check)


def _reason(text: object, *, required: bool) -> str:
    reason = str(text or "").strip()
    if required and not reason:
        raise SpecError("reason", "a rejection needs a reason")
    if len(reason) > MAX_REASON:
        raise SpecError("reason", f"at most {MAX_REASON} characters")
    return reason


def _project_id(s: Session, name: str | None, actor: Actor) -> int | None:
    """Return the id of project `name`; one the actor may not read is "not found", like a missing one."""
    if not name:
        return None
    project_id = s.scalar(select(Project.id).where(Project.name == name))
    if project_id is None or not can(actor, Action.READ, int(project_id)):
        raise NotFound(f"project {name!r} not found")
    return int(project_id)


def _check_name(s: Session, actor: Actor, spec: TemplateSpec, *, exclude_id: int | None) -> None:
    rows = s.scalars(select(TaskTemplate).where(TaskTemplate.name == spec.name)).all()
    others = [r for r in rows if r.id != exclude_id]
    if any(r.source != USER_SOURCE or r.owner_id != actor.user_id for r in others):
        raise Conflict(f"template name {spec.name!r} belongs to another owner; choose another name")
    if any(r.version == spec.version for r in others):
        raise Conflict(f"template {spec.ref} already exists; give a new version")


def _fill(row: TaskTemplate, spec: TemplateSpec, now: datetime) -> None:
    row.kind, row.category, row.description = spec.kind, spec.category, spec.description
    row.spec, row.readme, row.updated_at = seal_template_defaults(template_to_dict(spec)), spec.readme, now


def seal_template_defaults(data: dict[str, Any], fn: Callable[[str], str] = seal) -> dict[str, Any]:
    """Return a template's stored form with the defaults of its secret parameters sealed (B6)."""
    params = data.get("parameters")
    if not isinstance(params, dict):
        return data
    out = {
        **data,
        "parameters": {
            name: (
                {**p, "default": fn(p["default"])}
                if isinstance(p, dict) and p.get("type") == "secret" and isinstance(p.get("default"), str)
                else p
            )
            for name, p in params.items()
        },
    }
    return out


def _record(s: Session, template_id: int, action: str, reason: str, actor: Actor, now: datetime) -> None:
    s.add(TemplateReview(template_id=template_id, action=action, reason=reason, user_id=actor.user_id, at=now))


def _ref(row: TaskTemplate) -> str:
    return f"{row.name}@{row.version}"


def _scoped(q: Any, actor: Actor, scope: str) -> Any:
    if scope == "mine":
        return q.where(TaskTemplate.owner_id == actor.user_id, TaskTemplate.source == USER_SOURCE)
    if scope == "review":
        q = q.where(TaskTemplate.status == TemplateStatus.PENDING.value)
        if actor.is_admin:
            return q
        owned = [p for p, role in actor.projects.items() if role is ProjectRole.OWNER]
        return q.where(TaskTemplate.project_id.in_(owned))
    if scope != "visible":
        raise SpecError("scope", "must be visible, mine or review")
    if actor.is_admin:
        return q
    return q.where(
        or_(
            TaskTemplate.status == TemplateStatus.PUBLISHED.value,
            TaskTemplate.owner_id == actor.user_id,
            TaskTemplate.status == TemplateStatus.PENDING.value,
        )
    )


def _view(s: Session, row: TaskTemplate, actor: Actor) -> dict[str, Any]:
    owner = s.scalar(select(USERS.c.username).where(USERS.c.id == row.owner_id)) if row.owner_id else None
    project = s.scalar(select(Project.name).where(Project.id == row.project_id)) if row.project_id else None
    last = s.scalar(
        select(TemplateReview)
        .where(TemplateReview.template_id == row.id, TemplateReview.action == "reject")
        .order_by(TemplateReview.at.desc(), TemplateReview.id.desc())
        .limit(1)
    )
    spec = parse_template(row.spec, "database")
    return {
        "id": row.id,
        "name": row.name,
        "version": row.version,
        "ref": _ref(row),
        "kind": row.kind,
        "publish_scope": row.publish_scope if row.status == TemplateStatus.PUBLISHED else None,
        "category": row.category,
        "description": row.description,
        "status": row.status,
        "source": row.source,
        "owner": owner,
        "owner_id": row.owner_id,
        "project": project,
        "readme": row.readme,
        "rejection_reason": last.reason if last is not None and row.status == TemplateStatus.REJECTED else "",
        "can_edit": row.source == USER_SOURCE
        and row.owner_id == actor.user_id
        and row.status != TemplateStatus.PUBLISHED,
        "can_review": row.status == TemplateStatus.PENDING and may_review(actor, row),
        "definition": masked_template_dict(spec),
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
    }
