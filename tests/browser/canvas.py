"""Actions on the pages shared by the browser tests: drop, connect, fill, import, run, wait for colours."""

from __future__ import annotations

import re
from typing import Any

GREEN = "rgb(67, 160, 71)"
BLUE = "rgb(30, 136, 229)"
RED = "rgb(229, 57, 53)"


def drop_template(page: Any, template: str, x: int, y: int) -> None:
    """Drag a template from the palette onto the canvas at (x, y) of the canvas."""
    page.drag_and_drop(
        f".myapp-palette-item[data-template='{template}']",
        "[data-testid=canvas] .react-flow__pane",
        target_position={"x": x, "y": y},
    )


def node(page: Any, name: str) -> Any:
    return page.locator(f".react-flow__node .myapp-node[data-task='{name}']")


def connect(page: Any, source: str, target: str) -> None:
    """Drag from the bottom handle of `source` to the top handle of `target`."""
    start = node(page, source).locator(".react-flow__handle-bottom").bounding_box()
    end = node(page, target).locator(".react-flow__handle-top").bounding_box()
    page.mouse.move(start["x"] + start["width"] / 2, start["y"] + start["height"] / 2)
    page.mouse.down()
    page.mouse.move(end["x"] + end["width"] / 2, end["y"] + end["height"] / 2 + 2, steps=12)
    page.mouse.up()


def rename_selected(page: Any, name: str) -> None:
    field = page.locator("input[name=task-name]")
    field.fill(name)
    field.blur()
    page.wait_for_selector(f".myapp-node[data-task='{name}']")


def add_input(page: Any, index: int, name: str, source: str) -> None:
    """Add an input row to the selected task: `source` is a select value (param:params.X, task:T.O)."""
    page.click("[data-testid=add-input]")
    row = page.locator("[data-testid=task-form] .myapp-input-row[data-input]").nth(index)
    row.locator("[data-testid=input-name]").fill(name)
    page.select_option(f"select[data-source='input-{index}']", source)


def add_output(page: Any, name: str, path: str) -> None:
    page.click("[data-testid=add-output]")
    row = page.locator("[data-testid=task-form] .myapp-input-row[data-output]").last
    row.locator("[data-testid=output-name]").fill(name)
    row.locator("[data-testid=output-path]").fill(path)


def select_node(page: Any, name: str) -> None:
    node(page, name).click()
    page.wait_for_selector(f"[data-testid=task-form][data-task='{name}']")


def node_color(page: Any, name: str) -> str:
    return str(node(page, name).evaluate("el => getComputedStyle(el).backgroundColor"))


def wait_color(page: Any, name: str, color: str, timeout: float = 60_000) -> None:
    page.wait_for_function(
        "([name, color]) => { const el = document.querySelector(`.myapp-run-node[data-task='${name}']`);"
        " return el && getComputedStyle(el).backgroundColor === color; }",
        arg=[name, color],
        timeout=timeout,
    )


def import_yaml(page: Any, base: str, text: str) -> None:
    """Create a pipeline with the pipelines page's Import YAML dialog; land in its editor."""
    page.goto(f"{base}/pipelines/")
    page.click("button:has-text('Import YAML')")
    page.fill("[data-testid=import-text]", text)
    page.click("[data-testid=import-save]")
    page.wait_for_url(re.compile(r"/pipelines/\d+/edit$"))
    page.wait_for_selector(".react-flow__node")


def run_from_editor(page: Any) -> None:
    page.click("[data-testid=run]")
    page.click("[data-testid=run-start]")
    page.wait_for_url(re.compile(r"/runs/\d+$"))
    page.wait_for_selector(".myapp-run-node")


def node_state(page: Any, name: str) -> str:
    return str(node(page, name).get_attribute("data-state"))
