"""rules P2 in the browser: an input bound to `step1.x` is an edge step1 -> step2 on the canvas, on the
run page and in the export, though the YAML has no `depends_on`."""

from __future__ import annotations

import re
from typing import Any

import pytest

from myapp.yaml_io import load_yaml
from tests.browser.canvas import GREEN, connect, import_yaml, run_from_editor, select_node, wait_color
from tests.browser.conftest import api_token

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.timeout(240)]

BOUND = """\
name: implied-edge
tasks:
  - name: step1
    template: shell
    args: {script: 'echo hi > /tmp/implied-edge-x.txt'}
    outputs: [{name: x, path: /tmp/implied-edge-x.txt}]
  - name: step2
    template: shell
    args: {script: 'echo "got $x"'}
    inputs: {x: {from: step1.x}}
"""
EDGE = ".react-flow__edge"


def edge_count(page: Any, count: int) -> None:
    page.wait_for_function(f"n => document.querySelectorAll('{EDGE}').length === n", arg=count)


def test_a_binding_is_drawn_and_exported_as_an_edge(new_page: Any, live_server: Any) -> None:
    page = new_page()
    import_yaml(page, live_server.url, BOUND)
    edge_count(page, 1)
    assert page.locator(f"{EDGE}.myapp-edge-implied").count() == 1  # dashed: the binding implies it
    pipeline_id = int(re.search(r"/pipelines/(\d+)/edit$", page.url).group(1))  # type: ignore[union-attr]
    token = api_token(page)
    text = page.evaluate(
        "([id, token]) => fetch(`/api/v1/pipelines/${id}/export`, "
        "{headers: {Authorization: `Bearer ${token}`}}).then(r => r.text())",
        [pipeline_id, token],
    )
    tasks = load_yaml(text)["tasks"]
    assert [t.get("depends_on") for t in tasks] == [None, ["step1"]]

    # Unbinding the input removes the edge; choosing step1.x again (offered: not a descendant) restores it.
    select_node(page, "step2")
    page.select_option("select[data-source='input-0']", "literal:")
    edge_count(page, 0)
    page.select_option("select[data-source='input-0']", "task:step1.x")
    edge_count(page, 1)
    # step2 now depends on step1 through the binding alone: connecting step2 -> step1 closes a cycle,
    # and step1 is not offered step2's output.
    connect(page, "step2", "step1")
    page.wait_for_selector(".myapp-toast:has-text('cycle')")
    edge_count(page, 1)
    select_node(page, "step1")
    page.click("[data-testid=add-input]")
    options = page.locator("select[data-source='input-0'] option").all_inner_texts()
    assert not any(o.startswith("step2.") for o in options), options

    # The saved definition, opened afresh (the edit above is not saved), and its run page.
    fresh = new_page()
    fresh.goto(f"{live_server.url}/pipelines/{pipeline_id}/edit")
    fresh.wait_for_selector(".react-flow__node")
    edge_count(fresh, 1)
    run_from_editor(fresh)
    edge_count(fresh, 1)  # the run page's graph
    wait_color(fresh, "step1", GREEN)
    wait_color(fresh, "step2", GREEN)
