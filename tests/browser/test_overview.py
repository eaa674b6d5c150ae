"""The overview pages (issue 17): the Airflow-like pipeline list (strip of last runs, schedule in
words, next run, pause switch with the backfill guard, Run button, search, sort, total), the grid
of runs x tasks, the Gantt view of a run, log lines with times, stderr marks and search, the try
number in brackets, a first visit without "Access is Denied", the favicon, Chinese categories.
Screenshots: pipelines, grid, gantt, logs (docs/screenshots/ with MYAPP_SCREENSHOTS=docs/screenshots).
"""

from __future__ import annotations

import re
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.browser.canvas import GREEN, import_yaml, node, run_from_editor, wait_color
from tests.browser.conftest import shot

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.timeout(300)]

STREAMS = """
name: streams-demo
description: Writes to stdout and stderr
tasks:
  - name: extract
    template: shell
    args: {script: 'echo "rows extracted: 42"; echo "warning: 3 rows skipped" >&2; sleep 1'}
  - name: transform
    template: shell
    args: {script: 'echo "transforming"; sleep 1; echo "done transforming"'}
    depends_on: [extract]
  - name: load
    template: shell
    args: {script: 'echo "loaded"'}
    depends_on: [transform]
"""

HOURLY = """
name: hourly-report
description: An hourly report, paused until someone enables it
schedule:
  type: crontab
  cron: "0 * * * *"
  timezone: UTC
  start_time: "{start}"
  expired_limit: 0
  max_active_runs: 1
  enabled: false
tasks:
  - name: report
    template: shell
    args: {{script: 'echo report {{{{ execution_date }}}}'}}
"""


def test_pipeline_list_grid_gantt_and_logs(new_page: Any, live_server: Any) -> None:
    page = new_page()
    base = live_server.url
    import_yaml(page, base, STREAMS)
    pipeline_id = re.search(r"/pipelines/(\d+)/edit", page.url).group(1)  # type: ignore[union-attr]
    run_from_editor(page)
    wait_color(page, "load", GREEN)
    # the number in brackets is the try number, as `myapp run show` prints it
    assert node(page, "extract").inner_text().startswith("extract (1)")

    # logs: each line with its time; stderr marked; search filters
    node(page, "extract").click()
    page.click("a[data-tab=logs]")
    page.wait_for_selector("[data-testid=log-status]:has-text('archived')")
    err = page.locator(".myapp-log-line[data-stream=err]")
    assert err.count() == 1 and "warning: 3 rows skipped" in err.inner_text() and "stderr" in err.inner_text()
    times = page.locator(".myapp-log-line .myapp-log-time").all_inner_texts()
    assert times and all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} UTC", x) for x in times), times
    assert "/workflow_space" not in page.inner_text("[data-testid=log-text]")  # no internal path header
    page.fill("[data-testid=log-search]", "rows")
    page.wait_for_selector("[data-testid=log-matches]:has-text('matches: 2')")
    page.fill("[data-testid=log-search]", "skipped")
    page.wait_for_selector("[data-testid=log-matches]:has-text('matches: 1')")
    assert page.locator(".myapp-log-line mark").inner_text() == "skipped"
    shot(page, "logs")

    # the Gantt view: one bar per attempt, in graph order
    page.click("[data-testid=view-gantt]")
    page.wait_for_selector("[data-testid=gantt] .myapp-gantt-bar")
    rows = page.locator(".myapp-gantt-row").evaluate_all("els => els.map(e => e.dataset.task)")
    assert rows == ["extract", "transform", "load"]
    assert page.locator(".myapp-gantt-bar[data-try='1'][data-state=succeeded]").count() == 3
    shot(page, "gantt")

    # a second run from the list's Run button
    page.goto(f"{base}/pipelines/")
    row = page.locator("tr[data-pipeline=streams-demo]")
    row.locator("[data-testid=run-now]").click()
    page.wait_for_selector(".myapp-toast:has-text('started')")
    page.wait_for_function(
        "() => document.querySelectorAll("
        '"tr[data-pipeline=streams-demo] [data-testid=run-strip] a[data-state=succeeded]").length == 2',
        timeout=180_000,
        polling=1000,
    )

    # the grid: runs x tasks
    page.goto(f"{base}/pipelines/{pipeline_id}/grid")
    page.wait_for_selector("[data-testid=grid-table]")
    assert page.locator("tr[data-task] th.task").all_inner_texts() == ["extract", "transform", "load"]
    assert page.locator(".myapp-grid-cell[data-state=succeeded]").count() == 6
    assert page.locator(".myapp-grid-runbar").count() == 2
    assert "2 runs in all" in page.inner_text("[data-testid=grid-total]")
    shot(page, "grid")


def test_pipeline_list_schedule_switch_guards_the_backfill(new_page: Any, live_server: Any) -> None:
    page = new_page()
    base = live_server.url
    start = (datetime.now(UTC) - timedelta(hours=60)).strftime("%Y-%m-%dT%H:00:00")
    import_yaml(page, base, HOURLY.format(start=start))
    page.goto(f"{base}/pipelines/")
    row = page.locator("tr[data-pipeline=hourly-report]")
    row.wait_for()
    assert "Every hour" in row.locator("[data-testid=schedule-text]").inner_text()
    switch = row.locator("[data-testid=schedule-toggle]")
    assert switch.get_attribute("data-enabled") == "false"
    switch.click()
    dialog = page.locator("[data-testid=backfill-dialog]")
    dialog.wait_for()
    text = page.inner_text("[data-testid=backfill-text]")
    assert re.search(r"would start 6\d backfill runs", text), text  # ~60 hourly fire times, above 50
    page.click("[data-testid=backfill-confirm]")
    page.wait_for_selector("tr[data-pipeline=hourly-report] [data-testid=schedule-toggle][data-enabled=true]")
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:00:00 UTC", row.locator("[data-testid=next-run]").inner_text())
    # the save asked for a scheduler pass: the backfill's first runs show up in the strip
    page.wait_for_selector("tr[data-pipeline=hourly-report] [data-testid=run-strip] a", timeout=180_000)
    shot(page, "pipelines")
    # pausing needs no confirmation
    row.locator("[data-testid=schedule-toggle]").click()
    page.wait_for_selector("tr[data-pipeline=hourly-report] [data-testid=schedule-toggle][data-enabled=false]")

    # search and sort on the server, with the total
    page.fill("[data-testid=pipeline-search]", "hourly")
    page.wait_for_function("() => document.querySelectorAll('tr[data-pipeline]').length === 1")
    assert page.inner_text("[data-testid=pipelines-total]").strip() == "1 of 1"
    page.fill("[data-testid=pipeline-search]", "")
    page.select_option("[data-testid=pipeline-sort]", "-name")
    page.wait_for_function(
        "() => { const n = [...document.querySelectorAll('tr[data-pipeline]')].map(r => r.dataset.pipeline);"
        " return n.length > 1 && n.join() === [...n].sort().reverse().join(); }"
    )


def test_first_visit_has_no_access_denied_banner_and_a_favicon(browser: Any, live_server: Any) -> None:
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{live_server.url}/")
        page.wait_for_selector("input[name=username]")
        assert "/login" in page.url
        assert "Access is Denied" not in page.content()
        page.goto(f"{live_server.url}/runs/?state=failed")
        page.wait_for_selector("input[name=username]")
        assert "Access is Denied" not in page.content()
    finally:
        context.close()
    with urllib.request.urlopen(f"{live_server.url}/favicon.ico", timeout=10) as res:
        assert res.status == 200 and res.headers["Content-Type"].startswith("image/")


def test_palette_categories_and_the_list_in_chinese(new_page: Any, live_server: Any) -> None:
    page = new_page()
    page.goto(f"{live_server.url}/lang/zh")
    page.goto(f"{live_server.url}/pipelines/new")
    page.wait_for_selector(".myapp-palette-group[data-category=general] .myapp-palette-cat:has-text('通用')")
    page.wait_for_selector(".myapp-palette-group[data-category=monitoring] .myapp-palette-cat:has-text('监控')")
    page.goto(f"{live_server.url}/pipelines/")
    page.wait_for_selector("th:has-text('最近运行')")
    page.wait_for_selector("th:has-text('下次运行')")
    page.goto(f"{live_server.url}/lang/en")
