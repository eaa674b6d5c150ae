"""The web pages (docs/rules.md P7): thin Flask-AppBuilder views that render one Jinja shell each.

Every page is the same shell (`myapp/page.html`, FAB's layout: login, menus, language switch)
loading the front-end bundle built from `myapp/web/frontend/` into `static/dist/`; the bundle
reads and writes only through the REST API (/api/v1). Views here hold no business rule and
touch no store: they pick the page, pass ids from the URL, and let FAB check the permission.
Must not import the stores, the engine or the executors.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, current_app, redirect, request
from flask_appbuilder import BaseView, expose, has_access
from flask_babel import get_locale
from flask_login import current_user

from myapp.executor.task_user import USERS, describe

WEB_DIR = Path(__file__).resolve().parent
DIST_DIR = WEB_DIR / "static" / "dist"
BUNDLE_FILES = ("app.js", "app.css")
STATIC_URL = "/static/myapp"


@dataclass(frozen=True)
class Label:
    """A menu label in both languages; FAB's navbar prints str(label) in the current locale."""

    en: str
    zh: str

    def __str__(self) -> str:
        return self.zh if str(get_locale() or "en").startswith("zh") else self.en

    def __html__(self) -> str:
        from markupsafe import escape

        return str(escape(str(self)))


@dataclass(frozen=True)
class MenuLink:
    """One menu entry: `name` is its permission name (menu_access), `endpoint` its page."""

    name: str
    endpoint: str
    label: Label
    icon: str
    category: str


CATEGORIES = {
    "Pipelines": (Label("Pipelines", "任务流"), "fa-project-diagram"),
    "Runs": (Label("Runs", "运行实例"), "fa-play-circle"),
    "Templates": (Label("Templates", "模板"), "fa-puzzle-piece"),
}
MENU = (
    MenuLink("Pipeline list", "PipelinePages.list", Label("Pipelines", "任务流列表"), "fa-list", "Pipelines"),
    MenuLink("Pipeline editor", "PipelinePages.new", Label("New pipeline", "新建任务流"), "fa-pencil-alt", "Pipelines"),
    MenuLink(
        "Pipeline versions", "PipelinePages.all_versions", Label("Versions", "版本"), "fa-code-branch", "Pipelines"
    ),
    MenuLink(
        "Projects and members", "ProjectPages.list", Label("Projects & members", "项目与成员"), "fa-users", "Pipelines"
    ),
    MenuLink("Run list", "RunPages.list", Label("Runs", "运行实例列表"), "fa-tasks", "Runs"),
    MenuLink(
        "Schedule records", "SchedulePages.records", Label("Schedule records", "定时调度记录"), "fa-clock", "Runs"
    ),
    MenuLink("Template list", "TemplatePages.list", Label("Templates", "模板列表"), "fa-cubes", "Templates"),
    MenuLink("Template review", "TemplatePages.review", Label("Review", "模板审核"), "fa-check-square", "Templates"),
)
# Every signed-in role may see the menus; each page's own permission (and the API's) still applies.


def bundle_version() -> str:
    """Return a cache-busting token from the bundle's modification times ("" when not built)."""
    stamps = [int((DIST_DIR / name).stat().st_mtime) for name in BUNDLE_FILES if (DIST_DIR / name).exists()]
    return str(max(stamps)) if len(stamps) == len(BUNDLE_FILES) else ""


class PageView(BaseView):
    """Base of the page views: render the shell for one front-end page."""

    default_view = "list"

    def shell(self, page: str, title: Label, **props: Any) -> str:
        """Render the Jinja shell that mounts front-end `page` with `props`."""
        locale = str(get_locale() or "en")
        return self.render_template(
            "myapp/page.html",
            page=page,
            page_title=str(title),
            props=props,
            locale="zh" if locale.startswith("zh") else "en",
            bundle=bundle_version(),
            static_url=STATIC_URL + "/dist",
            isolation=task_isolation_notice(),
        )


def task_isolation_notice() -> str:
    """Return the warning every page shows when tasks cannot be run apart from the worker ('' when they can)."""
    settings = current_app.extensions["myapp"].settings
    state = describe(settings.task_isolation)
    return "" if state["mode"] == USERS or settings.executor == "kubernetes" else state["message"]


class PipelinePages(PageView):
    route_base = "/pipelines"
    class_permission_name = "Pipelines"
    method_permission_name = {
        "list": "read",
        "new": "read",
        "editor": "read",
        "versions": "read",
        "all_versions": "read",
        "grid": "read",
    }

    @expose("/")
    @has_access
    def list(self) -> str:
        return self.shell("pipelines", Label("Pipelines", "任务流"))

    @expose("/new")
    @has_access
    def new(self) -> str:
        return self.shell(
            "editor",
            Label("New pipeline", "新建任务流"),
            pipeline_id=None,
            copy_of=request.args.get("copy_of", type=int),
            copy_version=request.args.get("version", type=int),
        )

    @expose("/<int:pk>/edit")
    @has_access
    def editor(self, pk: int) -> str:
        return self.shell(
            "editor",
            Label("Pipeline editor", "任务流编辑"),
            pipeline_id=pk,
            version=request.args.get("version", type=int),
        )

    @expose("/<int:pk>/versions")
    @has_access
    def versions(self, pk: int) -> str:
        return self.shell("versions", Label("Pipeline versions", "任务流版本"), pipeline_id=pk)

    @expose("/<int:pk>/grid")
    @has_access
    def grid(self, pk: int) -> str:
        return self.shell("grid", Label("Pipeline runs grid", "任务流运行网格"), pipeline_id=pk)

    @expose("/versions")
    @has_access
    def all_versions(self) -> str:
        return self.shell("versions", Label("Pipeline versions", "任务流版本"), pipeline_id=None)


class RunPages(PageView):
    route_base = "/runs"
    class_permission_name = "Runs"
    method_permission_name = {"list": "read", "show": "read"}

    @expose("/")
    @has_access
    def list(self) -> str:
        return self.shell("runs", Label("Runs", "运行实例"), pipeline_id=request.args.get("pipeline_id", type=int))

    @expose("/<int:pk>")
    @has_access
    def show(self, pk: int) -> str:
        return self.shell("run", Label(f"Run {pk}", f"运行实例 {pk}"), run_id=pk)


class SchedulePages(PageView):
    route_base = "/schedules"
    default_view = "records"
    class_permission_name = "Schedules"
    method_permission_name = {"records": "read"}

    @expose("/records")
    @has_access
    def records(self) -> str:
        return self.shell(
            "schedules",
            Label("Schedule records", "定时调度记录"),
            pipeline_id=request.args.get("pipeline_id", type=int),
        )


class TemplatePages(PageView):
    route_base = "/templates"
    class_permission_name = "Templates"
    method_permission_name = {"list": "read", "review": "read"}

    @expose("/")
    @has_access
    def list(self) -> str:
        return self.shell("templates", Label("Templates", "模板"))

    @expose("/review")
    @has_access
    def review(self) -> str:
        return self.shell("review", Label("Template review", "模板审核"))


class ProjectPages(PageView):
    route_base = "/projects"
    class_permission_name = "Pipelines"
    method_permission_name = {"list": "read"}

    @expose("/")
    @has_access
    def list(self) -> str:
        return self.shell("projects", Label("Projects & members", "项目与成员"))


PAGE_VIEWS = (PipelinePages, RunPages, SchedulePages, TemplatePages, ProjectPages)


def register_pages(appbuilder: Any) -> None:
    """Add the page views, their menus, and the static bundle folder to the app."""
    app: Flask = current_app
    app.register_blueprint(
        Blueprint(
            "myapp_pages", __name__, static_folder="static", static_url_path=STATIC_URL, template_folder="templates"
        )
    )
    for view in PAGE_VIEWS:
        appbuilder.add_view_no_menu(view)
    page_endpoints = {view.__name__ for view in PAGE_VIEWS} | {"HomeView"}

    @app.before_request
    def login_first() -> Any:
        """Send an anonymous visitor of a page to the login page, without FAB's "Access is Denied" banner."""
        endpoint = (request.endpoint or "").split(".")[0]
        if endpoint in page_endpoints and not current_user.is_authenticated:
            return redirect(appbuilder.get_url_for_login_with(request.full_path.rstrip("?")))
        return None

    for link in MENU:
        label, icon = CATEGORIES[link.category]
        appbuilder.add_link(
            link.name,
            href=link.endpoint,
            icon=link.icon,
            label=link.label,
            category=link.category,
            category_icon=icon,
            category_label=label,
        )


def menu_access_pattern() -> str:
    """Return the view-menu regex of the page menus, for the built-in roles' `menu_access`."""
    return "^(" + "|".join([*CATEGORIES, *(link.name for link in MENU)]) + ")$"
