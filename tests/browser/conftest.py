"""Browser tests: Playwright (Python) driving Debian's headless Chromium against a real web server.

The server is the real app (`create_app`) on this module's test database, served by werkzeug in a
thread on 127.0.0.1:<free port>; runs execute on the real Celery workers of `engine_services`.
Modules mark themselves `browser` (registered here); every test that opens a page is skipped,
with the reason, only when /usr/bin/chromium is missing. The front-end
bundle is built first when it is missing (`npm run build`).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.accounts import ensure_member, ensure_user
from tests.conftest import REPO

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
DIST = REPO / "myapp" / "web" / "static" / "dist"
# Screenshots go to a scratch folder; MYAPP_SCREENSHOTS=docs/screenshots refreshes the docs' copies.
SCREENSHOTS = Path(os.environ.get("MYAPP_SCREENSHOTS", "/tmp/myapp-screenshots"))
VIEWER = ("viewer", "viewer-pass")
ADMIN = ("admin", "admin-pass")
REVIEWER = ("reviewer", "reviewer-pass")  # a second admin: nobody approves the templates they submitted


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives headless Chromium through the web pages (Playwright)")


@pytest.fixture(scope="session")
def chromium() -> Path:
    if not CHROMIUM.exists():
        pytest.skip("browser tests need Debian's chromium at /usr/bin/chromium (apt-get install -y chromium)")
    return CHROMIUM


@pytest.fixture(scope="session")
def bundle() -> Path:
    """The built front end; build it when missing (needs `npm ci` to have run)."""
    if not (DIST / "app.js").exists():
        npm = shutil.which("npm")
        if npm is None or not (REPO / "node_modules").exists():
            pytest.fail("the web bundle is missing: run `npm ci && npm run build` at the repository root")
        subprocess.run([npm, "run", "build"], cwd=REPO, check=True, capture_output=True)
    return DIST


class LiveServer:
    """The Flask app served by werkzeug in a background thread."""

    def __init__(self, app: Any) -> None:
        from werkzeug.serving import make_server

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log in test output
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def live_server(engine_services: Any, bundle: Path, chromium: Path) -> Iterator[LiveServer]:
    """The web app on this module's database, with a Viewer-role user besides the admin."""
    from myapp.web.app import create_app

    app = create_app(engine_services.settings, engine_services)
    with app.app_context():
        user = ensure_user(app, VIEWER[0], "Viewer", VIEWER[1])
        ensure_member(engine_services, user.id, "default", "viewer")
        ensure_user(app, REVIEWER[0], "Admin", REVIEWER[1])
    with LiveServer(app) as server:
        yield server


@pytest.fixture(scope="module")
def browser(chromium: Path) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


def login(page: Any, base: str, user: tuple[str, str]) -> None:
    """Sign in through Flask-AppBuilder's login form."""
    page.goto(f"{base}/login/")
    page.fill("input[name=username]", user[0])
    page.fill("input[name=password]", user[1])
    page.click("input[type=submit], button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert "/login" not in page.url, f"login failed for {user[0]}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.stash[FAILED] = report.failed


FAILED = pytest.StashKey[bool]()
# One folder per test process: two runs (another clone's, or the other database's suite) would
# overwrite each other's pictures of the same test.
FAILURE_SHOTS = Path(os.environ.get("MYAPP_BROWSER_FAILURES", "/tmp/myapp-browser-failures")) / str(os.getpid())


@pytest.fixture()
def new_page(browser: Any, live_server: LiveServer, request: pytest.FixtureRequest) -> Iterator[Callable[..., Any]]:
    """Open a signed-in page (admin by default) in a fresh browser context; collect page errors.

    Errors are uncaught JavaScript exceptions and Content-Security-Policy violations (the console
    reports what the policy blocked: a script, a style, a frame).

    When the test fails, each open page is saved as a PNG under MYAPP_BROWSER_FAILURES.
    """
    contexts: list[Any] = []
    errors: list[str] = []

    def open_page(user: tuple[str, str] = ADMIN, width: int = 1500, height: int = 900) -> Any:
        context = browser.new_context(viewport={"width": width, "height": height}, accept_downloads=True)
        contexts.append(context)
        page = context.new_page()
        # Every wait for an element is a wait for a condition: long enough for a loaded machine
        # (Chromium, the server and the workers share two cores with another test run).
        page.set_default_timeout(60_000)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda msg: errors.append(msg.text) if "Content Security Policy" in msg.text else None)
        login(page, live_server.url, user)
        return page

    yield open_page
    if request.node.stash.get(FAILED, False):
        FAILURE_SHOTS.mkdir(parents=True, exist_ok=True)
        for i, context in enumerate(contexts):
            for j, page in enumerate(context.pages):
                page.screenshot(path=str(FAILURE_SHOTS / f"{request.node.name}-{i}-{j}.png"), full_page=True)
    for context in contexts:
        context.close()
    assert errors == [], f"JavaScript errors on the pages: {errors}"


def shot(page: Any, name: str, *, hide_toasts: bool = False) -> None:
    """Keep a screenshot of the page (in MYAPP_SCREENSHOTS); `hide_toasts` leaves out the toasts over a form."""
    folder = SCREENSHOTS if SCREENSHOTS.is_absolute() else REPO / SCREENSHOTS
    folder.mkdir(parents=True, exist_ok=True)
    time.sleep(0.3)  # let transitions and fitView settle
    style = ".myapp-toasts { visibility: hidden; }" if hide_toasts else None
    page.screenshot(path=str(folder / f"{name}.png"), style=style)


def api_token(page: Any) -> str:
    """Return the page's API token (what the bundle itself uses)."""
    token: str = page.evaluate("fetch('/api/v1/me/').then(r => r.json()).then(d => d.access_token)")
    return token
