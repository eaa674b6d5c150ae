"""Run actions in the browser: a failed run retried from its failure, a running run stopped, a copy;
and the editor's on-the-spot refusals (cycles, duplicate names), Delete and validation errors.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.browser.canvas import (
    GREEN,
    RED,
    connect,
    drop_template,
    import_yaml,
    node,
    node_state,
    rename_selected,
    run_from_editor,
    wait_color,
)
from tests.browser.conftest import shot

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.timeout(240)]

FLAKY = """
name: flaky
parameters:
  - {{name: marker, default: "{marker}"}}
tasks:
  - name: prepare
    template: shell
    args: {{script: 'echo preparing'}}
  - name: flaky
    template: shell
    args: {{script: 'if [ -f "$marker" ]; then echo "second try works"; else touch "$marker"; echo "first try fails"; exit 3; fi'}}
    inputs: {{marker: {{from: params.marker}}}}
    depends_on: [prepare]
  - name: report
    template: shell
    args: {{script: 'echo reported'}}
    depends_on: [flaky]
"""

SLOW = """
name: slow
tasks:
  - name: sleeper
    template: shell
    args: {script: 'echo going to sleep; sleep 600'}
  - name: after
    template: shell
    args: {script: 'echo never'}
    depends_on: [sleeper]
"""


def test_failed_run_is_retried_from_its_failure(new_page: Any, live_server: Any, tmp_path: Path) -> None:
    page = new_page()
    import_yaml(page, live_server.url, FLAKY.format(marker=tmp_path / "marker"))
    run_from_editor(page)
    wait_color(page, "flaky", RED)
    page.wait_for_selector("[data-testid=run-page][data-state=failed]")
    assert node_state(page, "prepare") == "succeeded"
    assert node_state(page, "report") == "upstream_failed"
    node(page, "flaky").click()
    page.click("a[data-tab=logs]")
    page.wait_for_selector("[data-testid=log-text]:has-text('first try fails')")
    shot(page, "run-failed")

    page.click("button[data-action=retry]")
    wait_color(page, "report", GREEN)
    page.wait_for_selector("[data-testid=run-page][data-state=succeeded]")
    # the failed task ran again (try 2); the succeeded one kept its single attempt (try 1)
    assert node(page, "flaky").inner_text().startswith("flaky (2)")
    assert node(page, "prepare").inner_text().startswith("prepare (1)")
    node(page, "flaky").click()
    page.click("a[data-tab=logs]")
    page.wait_for_selector("[data-testid=log-text]:has-text('second try works')")
    page.select_option("[data-testid=try-select]", "1")
    page.wait_for_selector("[data-testid=log-text]:has-text('first try fails')")
    page.click("a[data-tab=details]")
    shot(page, "run-retried")


def test_running_run_is_stopped_and_copied(new_page: Any, live_server: Any) -> None:
    page = new_page()
    import_yaml(page, live_server.url, SLOW)
    run_from_editor(page)
    page.wait_for_selector(".myapp-run-node[data-task=sleeper][data-state=running]", timeout=120_000)
    node(page, "sleeper").click()
    page.click("a[data-tab=logs]")
    page.wait_for_selector("[data-testid=log-text]:has-text('going to sleep')")
    assert "live" in page.inner_text("[data-testid=log-status]")
    run_url = page.url
    # stop it from the runs list
    page.goto(f"{live_server.url}/runs/?state=running")
    page.wait_for_selector("tr[data-state=running] button[data-action=stop]")
    shot(page, "runs-running")
    page.click("tr[data-state=running] button[data-action=stop]")
    page.goto(run_url)
    page.wait_for_selector("[data-testid=run-page][data-state=stopped]", timeout=120_000)
    assert node_state(page, "sleeper") == "stopped"
    assert node_state(page, "after") in ("pending", "stopped", "upstream_failed")
    # a copy is a new run of the same version
    page.click("button[data-action=copy]")
    page.click("[data-testid=copy-start]")
    page.wait_for_url(lambda url: url != run_url and re.search(r"/runs/\d+$", url) is not None)
    page.wait_for_selector(".myapp-run-node[data-task=sleeper][data-state=running]", timeout=120_000)
    page.click("button[data-action=stop]")
    page.wait_for_selector("[data-testid=run-page][data-state=stopped]", timeout=120_000)


def test_editor_refuses_cycles_and_duplicate_names(new_page: Any, live_server: Any) -> None:
    page = new_page()
    page.goto(f"{live_server.url}/pipelines/new")
    page.wait_for_selector(".myapp-palette-item[data-template=shell]")
    page.fill("input[name=pipeline-name]", "refusals")
    drop_template(page, "shell", 250, 60)
    rename_selected(page, "first")
    drop_template(page, "shell", 250, 200)
    rename_selected(page, "second")
    drop_template(page, "python", 500, 200)
    connect(page, "first", "second")
    page.wait_for_function("document.querySelectorAll('.react-flow__edge').length === 1")
    connect(page, "second", "first")
    page.wait_for_selector(".myapp-toast:has-text('cycle')")
    assert page.locator(".react-flow__edge").count() == 1
    # a duplicate name is refused while typing; the node keeps its name
    node(page, "second").click()
    page.fill("input[name=task-name]", "first")
    page.wait_for_selector("[data-testid=name-error]:has-text('first')")
    assert node(page, "second").count() == 1
    page.fill("input[name=task-name]", "second")
    # validation names the task and the field (the script is required)
    page.click("[data-testid=validate]")
    page.wait_for_selector(".myapp-errors:has-text('tasks[first].args.script')")
    assert "invalid" in (node(page, "first").get_attribute("class") or "")
    shot(page, "editor-errors")
    # Delete removes the selected node (and its edges)
    node(page, "python").click()
    page.keyboard.press("Delete")
    page.wait_for_function("document.querySelectorAll('.react-flow__node').length === 2")
    # ... and the selected edge
    page.locator(".react-flow__edge").first.click(force=True)
    page.keyboard.press("Delete")
    page.wait_for_function("document.querySelectorAll('.react-flow__edge').length === 0")
    # pan and zoom
    before = page.get_attribute(".react-flow__viewport", "style")
    page.click(".react-flow__controls-zoomin")
    page.wait_for_function(
        "b => document.querySelector('.react-flow__viewport').getAttribute('style') !== b", arg=before
    )
