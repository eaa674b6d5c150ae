"""Slices on the run page (docs/rules.md R15): a sliced task is one node with its slices counted by
state; selecting it lists its slices, and a slice's own tabs (logs of its attempts) open from there.
The editor keeps the `slices` block: saving from the canvas writes it back unchanged."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.browser.canvas import RED, import_yaml, node, run_from_editor, wait_color
from tests.browser.conftest import shot
from tests.integration.engine_helpers import slice_fails_until

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.timeout(240)]

SWEEP = """
name: sweep-page
tasks:
  - name: grid
    image: local
    command: ["sh", "-c", "echo '[1, 2, 3, 4, 5, 6]' > /tmp/grid"]
    outputs: [{name: items, path: /tmp/grid, type: text}]
  - name: train
    image: local
    command: ["sh", "-c", "echo slice $0; [ $0 != 4 ]", "$x"]
    inputs: {x: {from: grid.items}}
    slices: {inputs: [x], parallelism: 3, success_ratio: 0.9}
  - {name: best, image: local, command: ['true'], depends_on: [train]}
"""


def test_a_sliced_task_is_one_node_with_counts_and_its_slices_open_from_the_panel(
    new_page: Any, live_server: Any, engine_services: Any
) -> None:
    page = new_page()
    import_yaml(page, live_server.url, SWEEP)
    page.click("[data-testid=save]")  # saved from the canvas: the slices block is kept as it was
    page.wait_for_selector("[data-testid=version-label]")
    pipeline_id = int(re.search(r"/pipelines/(\d+)/edit$", page.url).group(1))  # type: ignore[union-attr]
    sl = engine_services.pipelines.spec(pipeline_id)[0].task("train").slices
    assert (sl.inputs, sl.parallelism, sl.success_ratio) == (("x",), 3, 0.9)
    run_from_editor(page)
    page.wait_for_selector("[data-testid=run-page][data-state=failed]", timeout=60_000)
    wait_color(page, "train", RED)
    assert page.locator(".myapp-run-node").count() == 3  # grid, train, best: no node per slice
    counts = node(page, "train").locator("[data-testid=slice-counts]")
    assert "6 slices" in counts.inner_text()
    assert counts.locator(".myapp-slice-count[data-state=succeeded]").inner_text() == "5"
    assert counts.locator(".myapp-slice-count[data-state=failed]").inner_text() == "1"
    node(page, "train").click()
    picker = page.locator("[data-testid=slice-picker]")
    assert picker.locator(".myapp-slice").count() == 6
    assert picker.locator(".myapp-slice[data-slice='train[3]']").get_attribute("data-state") == "failed"
    page.click("a[data-tab=details]")
    page.wait_for_selector("[data-testid=task-panel]:has-text('5 of 6 slices succeeded')")
    shot(page, "run-slices")
    picker.locator(".myapp-slice[data-slice='train[3]']").click()
    page.click("a[data-tab=logs]")
    page.wait_for_selector("[data-testid=log-text]:has-text('slice 4')")
    assert node(page, "train").get_attribute("class").find("selected") >= 0  # the slice's task stays selected
    shot(page, "run-slice-log")


FORM = """
name: sweep-form
tasks:
  - {name: train, image: local, command: ['echo', '$lr', '$mode'], inputs: {lr: [1, 2, 3], mode: fast}}
  - {name: grid, image: local, command: ['true'], inputs: {n: [1, 2]}, slices: {inputs: [n], continue_on_failed: true}}
"""


def test_the_slices_form_writes_the_block(new_page: Any, live_server: Any, engine_services: Any) -> None:
    from tests.browser.canvas import select_node

    page = new_page()
    import_yaml(page, live_server.url, FORM)
    select_node(page, "grid")
    assert page.is_checked("[name=slice-input-n]") and page.is_checked("[name=slices-continue-on-failed]")
    select_node(page, "train")
    assert not page.is_checked("[name=slice-input-lr]")
    page.check("[name=slice-input-lr]")
    page.fill("[name=slices-parallelism]", "2")
    page.fill("[name=slices-success-ratio]", "0.5")
    shot(page, "editor-slices", hide_toasts=True)
    page.click("[data-testid=save]")
    page.wait_for_selector("[data-testid=version-label]:has-text('version 2')")
    pipeline_id = int(re.search(r"/pipelines/(\d+)/edit$", page.url).group(1))  # type: ignore[union-attr]
    spec = engine_services.pipelines.spec(pipeline_id)[0]
    train, grid = spec.task("train").slices, spec.task("grid").slices
    assert (train.inputs, train.parallelism, train.success_ratio, train.continue_on_failed) == (("lr",), 2, 0.5, False)
    assert (grid.inputs, grid.continue_on_failed) == (("n",), True)


def test_one_failed_slice_is_retried_from_its_panel(
    new_page: Any, live_server: Any, engine_services: Any, tmp_path: Any
) -> None:
    flag = tmp_path / "fixed"
    page = new_page()
    import_yaml(page, live_server.url, slice_fails_until("sweep-retry-one", flag))
    run_from_editor(page)
    page.wait_for_selector("[data-testid=run-page][data-state=failed]", timeout=60_000)
    node(page, "train").click()
    picker = page.locator("[data-testid=slice-picker]")
    picker.locator(".myapp-slice[data-slice='train[0]']").click()
    page.wait_for_selector("[data-testid=task-panel] [data-task='train[0]']")
    assert page.locator("[data-action=retry-slice]").count() == 0  # a succeeded slice has no retry
    picker.locator(".myapp-slice[data-slice='train[1]']").click()
    button = page.locator("[data-action=retry-slice]")
    button.wait_for()
    assert "train[1]" in button.inner_text()
    flag.write_text("")
    shot(page, "run-slice-retry")
    button.click()
    page.wait_for_selector("[data-testid=run-page][data-state=succeeded]", timeout=60_000)
    page.wait_for_selector(".myapp-slice[data-slice='train[1]'][data-state=succeeded]:has-text('(2)')")
    assert picker.locator(".myapp-slice[data-slice='train[0]']").inner_text() == "0"  # ran once
    assert page.locator("[data-action=retry-slice]").count() == 0
