"""A new user builds a pipeline in the browser, saves it, runs it, reads its logs and debugs one task.

Everything goes through the pages: drag templates from the palette, connect the nodes, fill the
generated forms, save (a new version), run, watch the run page's colours, open the logs tab.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.browser.canvas import (
    GREEN,
    add_input,
    add_output,
    connect,
    drop_template,
    node,
    node_color,
    rename_selected,
    select_node,
    wait_color,
)
from tests.browser.conftest import shot

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.timeout(240)]


def build_three_tasks(page: Any, base: str, name: str) -> None:
    """Build extract -> transform -> load in the editor, entirely with the mouse and the forms."""
    page.goto(f"{base}/pipelines/new")
    page.wait_for_selector("[data-testid=palette] .myapp-palette-item[data-template=shell]")
    shot(page, "editor-empty")
    page.fill("input[name=pipeline-name]", name)
    # a global parameter
    page.click("[data-testid=open-params]")
    page.click("[data-testid=param-add]")
    page.fill("[data-testid=param-name]", "who")
    page.fill("[data-testid=param-default]", "world")
    page.click("[data-testid=params-apply]")
    # three nodes from the palette
    drop_template(page, "shell", 300, 80)
    rename_selected(page, "extract")
    drop_template(page, "python", 300, 230)
    rename_selected(page, "transform")
    drop_template(page, "shell", 300, 380)
    rename_selected(page, "load")
    assert page.locator(".react-flow__node").count() == 3
    connect(page, "extract", "transform")
    connect(page, "transform", "load")
    page.wait_for_function("document.querySelectorAll('.react-flow__edge').length === 2")
    # forms generated from each template's parameters
    select_node(page, "extract")
    page.fill("[data-param=script]", 'echo "extracting for $who"; echo "greeting-$who" > greeting.txt')
    add_input(page, 0, "who", "param:params.who")
    add_output(page, "greeting", "greeting.txt")
    select_node(page, "transform")
    page.fill(
        "[data-param=code]",
        'import os\ng = os.environ["greeting"]\nprint("transform got", g)\nopen("upper.txt", "w").write(g.upper())',
    )
    add_input(page, 0, "greeting", "task:extract.greeting")
    add_output(page, "upper", "upper.txt")
    select_node(page, "load")
    page.fill("[data-param=script]", 'echo "loaded $upper"')
    # only ancestors' outputs are offered
    options = page.locator("select[data-source=script] option").all_inner_texts()
    assert any("transform.upper" in o for o in options) and any("extract.greeting" in o for o in options)
    add_input(page, 0, "upper", "task:transform.upper")
    page.click("[data-testid=auto-layout]")


def test_build_save_run_watch_logs(new_page: Any, live_server: Any) -> None:
    page = new_page()
    base = live_server.url
    build_three_tasks(page, base, "browser-etl")
    page.click("[data-testid=validate]")
    page.wait_for_selector(".myapp-toast:has-text('valid')")
    page.click("[data-testid=save]")
    page.wait_for_selector("[data-testid=version-label]:has-text('version 1')")
    assert re.search(r"/pipelines/\d+/edit$", page.url)
    select_node(page, "transform")
    shot(page, "editor")

    # run it from the editor: the run dialog shows the global parameters, pre-filled
    page.click("[data-testid=run]")
    assert page.input_value("[data-run-param=who]") == "world"
    page.fill("[data-run-param=who]", "browser")
    page.click("[data-testid=run-start]")
    page.wait_for_url(re.compile(r"/runs/\d+$"))
    page.wait_for_selector(".myapp-run-node[data-task=load]")
    wait_color(page, "extract", GREEN)
    wait_color(page, "load", GREEN)
    assert node_color(page, "transform") == GREEN
    page.wait_for_selector("[data-testid=run-page][data-state=succeeded]")
    assert node(page, "load").inner_text().startswith("load (1)")  # its try number, as `run show` prints it

    # the logs tab shows the task's own output; inputs/outputs show what passed between tasks
    node(page, "load").click()
    page.click("a[data-tab=io]")
    assert "GREETING-BROWSER" in page.inner_text("[data-testid=task-inputs]")
    page.click("a[data-tab=logs]")
    page.wait_for_selector("[data-testid=log-text]:has-text('loaded GREETING-BROWSER')")
    page.wait_for_selector("[data-testid=log-status]:has-text('archived')")
    shot(page, "run-page")
    with page.expect_download() as download:
        page.click("[data-testid=log-download]")
    assert "loaded GREETING-BROWSER" in open(download.value.path(), encoding="utf-8").read()
    page.click("a[data-tab=container]")
    assert "PID" in page.inner_text("[data-testid=container-info]")
    page.click("a[data-tab=events]")
    page.click("a[data-tab=details]")

    # the saved pipeline appears in the list and in the runs list
    page.goto(f"{base}/pipelines/")
    page.wait_for_selector("tr[data-pipeline=browser-etl]")
    page.goto(f"{base}/runs/")
    page.wait_for_selector("tr[data-state=succeeded]")
    shot(page, "runs")


def test_debug_one_task_with_live_logs(new_page: Any, live_server: Any) -> None:
    page = new_page()
    page.goto(f"{live_server.url}/pipelines/")
    page.click("tr[data-pipeline=browser-etl] a:has-text('browser-etl')")
    page.wait_for_selector(".myapp-node[data-task=transform]")
    select_node(page, "transform")
    page.click("[data-testid=debug-task]")
    # an upstream input is pre-filled from the pipeline's latest succeeded run; typing overrides it
    page.wait_for_selector("[data-debug-source=greeting]:has-text('#')")
    field = page.locator("[data-debug-input=greeting]")
    assert field.input_value() == "greeting-browser"
    assert "extract." in page.inner_text("[data-debug-source=greeting]")
    field.fill("typed-by-hand")
    page.click("[data-testid=debug-start]")
    page.wait_for_selector(
        "[data-testid=debug-run] [data-testid=log-text]:has-text('transform got typed-by-hand')", timeout=180_000
    )
    page.wait_for_selector("[data-testid=debug-run] .myapp-badge[data-state=succeeded]")
    shot(page, "editor-debug")
    run_id = page.get_attribute("[data-testid=debug-run]", "data-run-id")
    page.goto(f"{live_server.url}/runs/{run_id}")
    page.wait_for_selector(".myapp-run-node[data-task=transform][data-state=succeeded]")
    assert page.locator(".myapp-run-node").count() == 1
