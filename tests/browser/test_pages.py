"""The other pages: versions, schedule records, templates and review, projects, a viewer who cannot
edit, and the Chinese language switch. Screenshots of each go to docs/screenshots/.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.browser.canvas import GREEN, import_yaml, node, run_from_editor, wait_color
from tests.browser.conftest import REVIEWER, VIEWER, api_token, shot

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.timeout(240)]

HELLO = """
name: hello
description: Say hello
parameters:
  - {name: who, default: world}
tasks:
  - name: greet
    template: shell
    args: {script: 'echo "hello $who"'}
    inputs: {who: {from: params.who}}
  - name: done
    template: shell
    args: {script: 'echo done'}
    depends_on: [greet]
"""

NIGHTLY = """
name: nightly
schedule:
  type: crontab
  cron: "0 * * * *"
  timezone: Asia/Shanghai
  start_time: "{start}"
  expired_limit: 2
tasks:
  - name: tick
    template: shell
    args: {{script: 'echo tick {{{{ execution_date }}}}'}}
"""


def api_status(page: Any, path: str) -> int:
    """Return the HTTP status of GET /api/v1<path> as the page's own client sees it."""
    token = api_token(page)
    status: int = page.evaluate(
        "([p, t]) => fetch('/api/v1' + p, {headers: {Authorization: 'Bearer ' + t}}).then(r => r.status)", [path, token]
    )
    return status


def test_versions_list_view_and_copy(new_page: Any, live_server: Any) -> None:
    page = new_page()
    import_yaml(page, live_server.url, HELLO)
    # edit and save again: version 2
    page.click(".react-flow__pane", position={"x": 20, "y": 20})
    page.fill("textarea[name=pipeline-description]", "Say hello, edited")
    page.fill("input[name=version-message]", "second")
    page.click("[data-testid=save]")
    page.wait_for_selector("[data-testid=version-label]:has-text('version 2')")
    page.click(".myapp-links a:has-text('Versions')")
    page.wait_for_selector("tr[data-version='1']")
    assert page.locator("tr[data-version]").count() == 2
    page.click("tr[data-version='1'] button[data-action=view]")
    page.wait_for_selector("[data-testid=version-dag] .myapp-node[data-task=greet]")
    shot(page, "versions")
    page.click("[data-testid=version-dialog] a[data-tab=yaml]")
    assert "description: Say hello\n" in page.inner_text("[data-testid=version-yaml]")
    page.keyboard.press("Escape")
    # copy version 1 as a new pipeline
    page.click("tr[data-version='1'] a[data-action=copy-pipeline]")
    page.wait_for_selector(".myapp-node[data-task=greet]")
    assert page.input_value("input[name=pipeline-name]") == "hello-copy"
    page.click("[data-testid=save]")
    page.wait_for_selector("[data-testid=version-label]:has-text('version 1')")
    page.goto(f"{live_server.url}/pipelines/")
    page.wait_for_selector("tr[data-pipeline=hello-copy]")


def test_schedule_records(new_page: Any, live_server: Any, engine_services: Any) -> None:
    page = new_page()
    if api_status(page, "/schedules/records") == 404:
        pytest.skip("GET /api/v1/schedules/records is not on this server (myapp/web/schedule_api.py)")
    start = (datetime.now(UTC) + timedelta(hours=8) - timedelta(hours=5)).strftime("%Y-%m-%dT%H:00:00")
    import_yaml(page, live_server.url, NIGHTLY.format(start=start))
    pipeline_id = re.search(r"/pipelines/(\d+)/edit", page.url).group(1)  # type: ignore[union-attr]
    page.click("[data-testid=open-schedule]")
    assert page.input_value("input[name=cron]") == "0 * * * *"
    page.keyboard.press("Escape")
    from myapp.scheduling.scheduler import run_pass

    run_pass(engine_services, datetime.now(UTC))
    page.goto(f"{live_server.url}/schedules/records?pipeline_id={pipeline_id}")
    page.wait_for_selector("[data-testid=records-table] tr[data-status=launched]")
    assert page.locator("[data-testid=records-table] tr[data-status=expired]").count() >= 1
    page.wait_for_selector("[data-testid=preview-table]")
    shot(page, "schedule-records")


def test_templates_create_submit_review(new_page: Any, live_server: Any) -> None:
    page = new_page()
    if api_status(page, "/user_templates/") == 404:
        pytest.skip("/api/v1/user_templates/ is not on this server (myapp/web/template_api.py)")
    page.goto(f"{live_server.url}/templates/")
    page.wait_for_selector("[data-testid=catalog] .myapp-card[data-template=shell]")
    shot(page, "templates")
    page.click("a[data-tab=mine]")
    page.click("[data-testid=create-template]")
    page.fill("input[name=tpl-name]", "word-count")
    page.fill("input[name=tpl-category]", "text")
    page.fill("input[name=tpl-description]", "Count the words of a text")
    page.fill("input[name=tpl-image]", "debian:bookworm-slim")
    page.fill("textarea[name=tpl-command]", "bash\n-c\necho $(params.text) | wc -w")
    page.click("[data-testid=tpl-add-param]")
    page.fill("[data-testid=tpl-param-name]", "text")
    page.click("[data-testid=template-save]")
    page.wait_for_selector("tr[data-template=word-count][data-status=draft]")
    page.click("tr[data-template=word-count] button[data-action=submit]")
    page.wait_for_selector("tr[data-template=word-count][data-status=pending]")
    page.goto(f"{live_server.url}/templates/review")
    page.wait_for_selector("[data-testid=review-table] tr[data-template=word-count]")
    shot(page, "review")
    # Its submitter may not approve it: the dialog says why and nothing is published.
    page.click("[data-testid=review-table] tr[data-template=word-count] button[data-action=approve]")
    page.click("[data-testid=approve-confirm]")
    page.wait_for_selector("[data-testid=approve-dialog] :text('another reviewer must approve it')")
    page.click("[data-testid=approve-dialog] button.close")
    # Another admin publishes it; a personal template can only go to every project.
    reviewer = new_page(REVIEWER)
    reviewer.goto(f"{live_server.url}/templates/review")
    reviewer.click("[data-testid=review-table] tr[data-template=word-count] button[data-action=approve]")
    assert reviewer.is_disabled("input[name=publish-scope][value=project]")
    assert reviewer.is_checked("input[name=publish-scope][value=all]")
    reviewer.fill("[data-testid=approve-comment]", "looks good")
    reviewer.click("[data-testid=approve-confirm]")
    reviewer.wait_for_selector("[data-testid=approve-dialog]", state="detached")
    page.reload()
    page.wait_for_selector("[data-testid=mine-table] tr[data-template=word-count][data-status=published]")
    page.goto(f"{live_server.url}/templates/")
    page.wait_for_selector(".myapp-catalog-group .myapp-card[data-template=word-count]")


def test_projects_and_members(new_page: Any, live_server: Any) -> None:
    page = new_page()
    page.goto(f"{live_server.url}/projects/")
    page.fill("input[name=project-name]", "analytics")
    page.click("button:has-text('Create project')")
    card = page.locator("[data-project=analytics]")
    card.wait_for()
    card.locator("[data-testid=member-username]").fill(VIEWER[0])
    card.locator("select").last.select_option("viewer")
    card.locator("button:has-text('Add member')").click()
    page.wait_for_selector("[data-project=analytics] tr[data-member=viewer]")
    shot(page, "projects")


def test_viewer_cannot_edit(new_page: Any, live_server: Any) -> None:
    admin = new_page()
    import_yaml(admin, live_server.url, HELLO.replace("name: hello", "name: readonly-demo"))
    run_from_editor(admin)
    wait_color(admin, "done", GREEN)
    page = new_page(VIEWER)
    page.goto(f"{live_server.url}/pipelines/")
    page.wait_for_selector("tr[data-pipeline=readonly-demo]")
    assert page.locator("[data-testid=new-pipeline]").count() == 0
    page.click("tr[data-pipeline=readonly-demo] a:has-text('readonly-demo')")
    page.wait_for_selector("[data-testid=read-only]")
    page.wait_for_selector(".myapp-palette-item.disabled[data-template=shell]")
    page.wait_for_selector(".myapp-node[data-task=greet]")
    assert page.locator("[data-testid=save]").count() == 0
    assert page.locator("[data-testid=run]").count() == 0
    assert page.locator(".myapp-palette-item.disabled").count() >= 2
    node(page, "greet").click()
    assert page.locator("[data-param=script]").is_disabled()
    page.keyboard.press("Delete")
    assert page.locator(".react-flow__node").count() == 2
    shot(page, "editor-viewer")
    # the API refuses the viewer's writes too, whatever a page would send
    token = api_token(page)
    status = page.evaluate(
        "([t]) => fetch('/api/v1/pipelines/', {method: 'POST', headers: {Authorization: 'Bearer ' + t,"
        " 'Content-Type': 'application/json'}, body: JSON.stringify({name: 'x', tasks: []})})"
        ".then(r => r.status)",
        [token],
    )
    assert status == 403
    # runs: readable, but no stop/retry/copy buttons
    page.goto(f"{live_server.url}/runs/")
    page.wait_for_selector("tr[data-state=succeeded]")
    assert page.locator("button[data-action]").count() == 0


def test_chinese_pages(new_page: Any, live_server: Any) -> None:
    page = new_page()
    page.goto(f"{live_server.url}/lang/zh")
    page.goto(f"{live_server.url}/runs/")
    page.wait_for_selector("h2:has-text('运行实例')")
    page.click("tr[data-state=succeeded] a >> nth=0")
    page.wait_for_selector(".myapp-run-node[data-state=succeeded]")
    page.locator(".myapp-run-node").first.click()
    page.wait_for_selector("a[data-tab=io]:has-text('输入输出')")
    assert page.locator("a[data-tab=events]").inner_text() == "k8s 事件"
    page.click("a[data-tab=logs]")
    page.wait_for_selector("[data-testid=log-status]:has-text('已归档')")
    shot(page, "run-page-zh")
    page.goto(f"{live_server.url}/pipelines/new")
    page.wait_for_selector("button:has-text('保存为新版本')")
    page.goto(f"{live_server.url}/lang/en")


def test_swagger_and_the_user_admin_pages_run_under_the_content_security_policy(
    new_page: Any, live_server: Any
) -> None:
    page = new_page()  # the fixture fails the test on any Content-Security-Policy violation
    page.goto(f"{live_server.url}/swagger/v1")
    page.wait_for_selector(".swagger-ui .opblock-tag")
    page.goto(f"{live_server.url}/users/list/")
    page.wait_for_selector("table :text('admin')")
    page.goto(f"{live_server.url}/users/add")
    page.wait_for_selector("input[name=username]")
