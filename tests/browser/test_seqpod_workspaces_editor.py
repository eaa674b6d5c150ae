"""The forms of issue 15 item 6 for SeqPod and workspaces, driven like a user.

A SeqPod's steps belong to its template (`extra.steps`, docs/templates.md §9), so their form is the
template page's: steps added, reordered and removed, the server's error shown at its step, the
stored definition read back. A task's workspaces are the editor's: rows checked as the server
checks them, its errors shown at the row, saved and reloaded. A pipeline using both reads back
from the editor's YAML exactly as it was imported, and two tasks bound to each other's outputs
are refused as a cycle that names the bindings.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from myapp.catalog.plugins import parse_template
from myapp.yaml_io import load_yaml
from tests.browser.canvas import import_yaml, select_node
from tests.browser.conftest import api_token, shot

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.timeout(240)]

STEP = "[data-testid=seqpod-steps] .myapp-step"


def fetch(page: Any, path: str) -> Any:
    """GET an API path with the page's token; return the parsed JSON (or YAML text as a dict)."""
    text = page.evaluate(
        "([path, token]) => fetch(`/api/v1${path}`, {headers: {Authorization: `Bearer ${token}`}}).then(r => r.text())",
        [path, api_token(page)],
    )
    return load_yaml(text)


def step_names(page: Any) -> list[str]:
    return [str(el.get_attribute("data-step-name")) for el in page.locator(STEP).all()]


def fill_step(page: Any, index: int, name: str, mode: str, body: str, image: str = "") -> None:
    step = page.locator(STEP).nth(index)
    step.locator("[data-testid=step-name]").fill(name)
    step.locator("[data-testid=step-mode]").select_option(mode)
    step.locator("[data-testid=step-command]" if mode == "command" else "[data-testid=step-script]").fill(body)
    if image:
        step.locator("[data-testid=step-image]").fill(image)


def test_seqpod_steps_form_on_the_template_page(new_page: Any, live_server: Any) -> None:
    page = new_page()
    page.goto(f"{live_server.url}/templates/?tab=mine")
    page.click("[data-testid=create-template]")
    page.fill("input[name=tpl-name]", "prepare-and-train")
    page.fill("input[name=tpl-description]", "Write, read and show a file in one task")
    page.select_option("select[name=tpl-kind]", "seqpod")
    page.fill("input[name=tpl-image]", "python:3.12-slim")
    assert page.locator("textarea[name=tpl-command]").count() == 0  # a SeqPod has steps, not a command
    page.click("[data-testid=tpl-add-param]")
    page.fill("[data-testid=tpl-param-name]", "greeting")

    # Three steps, added in the wrong order, then one moved up; a fourth names an unknown parameter.
    page.click("[data-testid=add-step]")
    fill_step(page, 0, "write", "shell", 'echo "$(params.greeting)" > shared.txt')
    page.click("[data-testid=add-step]")
    fill_step(page, 1, "show", "command", "cat\nresult.txt", image="busybox:1.36")
    page.click("[data-testid=add-step]")
    fill_step(
        page, 2, "read", "python", "text = open('shared.txt').read()\nopen('result.txt', 'w').write(text.upper())"
    )
    page.locator(STEP).nth(2).locator("[data-testid=step-up]").click()
    assert step_names(page) == ["write", "read", "show"]
    page.click("[data-testid=add-step]")
    fill_step(page, 3, "oops", "command", "echo\n$(params.nope)")

    # A name used twice is refused before asking the server, at the step, in the server's words.
    page.locator(STEP).nth(3).locator("[data-testid=step-name]").fill("read")
    page.click("[data-testid=template-save]")
    page.wait_for_selector(f"{STEP}[data-step='3'] [data-testid=step-error]:has-text(\"step 'read' is defined twice\")")
    page.locator(STEP).nth(3).locator("[data-testid=step-name]").fill("oops")

    # Only the server knows the parameters a command may name: its error shows at step 4.
    page.click("[data-testid=template-save]")
    error = page.locator(f"{STEP}[data-step='3'] [data-testid=step-error]:has-text('unknown parameter')")
    error.wait_for()
    assert "extra.steps[3].command" in error.inner_text() and "nope" in error.inner_text(), error.inner_text()
    assert page.locator(f"{STEP}[data-step='0'] [data-testid=step-error]").count() == 0
    shot(page, "template-seqpod-steps")

    page.locator(STEP).nth(3).locator("[data-testid=step-remove]").click()
    assert step_names(page) == ["write", "read", "show"]
    page.click("[data-testid=template-save]")
    page.wait_for_selector("tr[data-template=prepare-and-train][data-status=draft]")

    stored = [t for t in fetch(page, "/user_templates/?scope=mine")["result"] if t["name"] == "prepare-and-train"]
    definition = stored[0]["definition"]
    assert definition["kind"] == "seqpod" and not definition.get("command"), definition
    assert definition["extra"]["steps"] == [
        {"name": "write", "script": 'echo "$(params.greeting)" > shared.txt'},
        {
            "name": "read",
            "script": "text = open('shared.txt').read()\nopen('result.txt', 'w').write(text.upper())",
            "language": "python",
        },
        {"name": "show", "image": "busybox:1.36", "command": ["cat", "result.txt"]},
    ]

    # Reloaded, the form shows the steps as saved.
    page.reload()
    page.click("tr[data-template=prepare-and-train] button[data-action=edit]")
    page.wait_for_selector(STEP)
    assert step_names(page) == ["write", "read", "show"]
    modes = [page.locator(STEP).nth(i).locator("[data-testid=step-mode]").input_value() for i in range(3)]
    assert modes == ["shell", "python", "command"]
    assert page.locator(STEP).nth(2).locator("[data-testid=step-command]").input_value() == "cat\nresult.txt"


SEQ_TEMPLATE = {
    "name": "seq-ws",
    "version": "1",
    "kind": "seqpod",
    "image": "python:3.12-slim",
    "parameters": {"greeting": {"type": "string", "default": "hello"}},
    "outputs": [{"name": "result", "path": "result.txt", "type": "text"}],
    "extra": {
        "steps": [
            {"name": "write", "script": 'echo "$(params.greeting)" > "$(workspaces.data.path)/in.txt"'},
            {"name": "read", "language": "python", "script": "print(open('result.txt').read())"},
        ]
    },
}

PIPELINE = """\
name: seqpod-workspaces
project: default
tasks:
  - name: prep
    template: seq-ws@1
    args: {greeting: hi}
    workspaces:
      data: {claim: default-data, path: /mnt/data}
      scratch: {}
    env: {DATA: $(workspaces.data.path)/in}
    position: [80, 60]
  - name: report
    image: python:3.12-slim
    command: [python3, -c, "import sys; print(sys.argv[1])", $result]
    inputs: {result: {from: prep.result}}
    position: [80, 200]
"""


def test_workspaces_form_and_the_yaml_round_trip(new_page: Any, live_server: Any, engine_services: Any) -> None:
    engine_services.templates.sync([parse_template(SEQ_TEMPLATE)], "test", engine_services.clock.now())
    page = new_page()
    import_yaml(page, live_server.url, PIPELINE)
    pipeline_id = int(re.search(r"/pipelines/(\d+)/edit$", page.url).group(1))  # type: ignore[union-attr]
    # The binding prep.result is an upstream: drawn (dashed) though the YAML has no depends_on.
    page.wait_for_function("() => document.querySelectorAll('.react-flow__edge.myapp-edge-implied').length === 1")

    # Round trip: the editor's YAML is the stored definition (workspaces, steps' template, the
    # implied depends_on), and saving it unchanged makes no new version.
    page.click("[data-testid=open-yaml]")
    from_editor = load_yaml(page.input_value("[data-testid=yaml-text]"))
    page.click("[data-testid=yaml-dialog] button:has-text('Close')")
    exported = fetch(page, f"/pipelines/{pipeline_id}/export")
    assert from_editor == exported, (from_editor, exported)
    assert exported["tasks"][0]["workspaces"] == {"data": {"claim": "default-data", "path": "/mnt/data"}, "scratch": {}}
    assert exported["tasks"][1]["depends_on"] == ["prep"]
    page.click("[data-testid=save]")
    page.wait_for_selector(".myapp-toast:has-text('No change: still version 1')")

    # The task form: the template's steps (read-only here) and the workspaces with how to refer to them.
    select_node(page, "prep")
    assert page.locator("[data-testid=seqpod-steps-list] li").count() == 2
    shot(page, "editor-seqpod-task", hide_toasts=True)
    assert page.locator("[data-testid=workspace-ref]").all_inner_texts() == [
        "$(workspaces.data.path)",
        "$(workspaces.scratch.path)",
    ]
    rows = page.locator("[data-testid=workspaces] .myapp-workspace")
    assert rows.nth(0).locator("[data-testid=workspace-claim]").input_value() == "default-data"

    # A new row: a name already bound and a relative path are shown at once and refused on save.
    page.click("[data-testid=add-workspace]")
    rows.nth(2).locator("[data-testid=workspace-name]").fill("data")
    rows.nth(2).locator("[data-testid=workspace-path]").fill("mnt/models")
    errors = rows.nth(2).locator("[data-testid=workspace-error]")
    assert "bound twice" in errors.nth(0).inner_text()
    assert "must be an absolute path" in errors.nth(1).inner_text()
    page.click("[data-testid=save]")
    page.wait_for_selector(".myapp-errors :text('bound twice')")
    rows.nth(2).locator("[data-testid=workspace-name]").fill("models")
    rows.nth(2).locator("[data-testid=workspace-claim]").fill("default-models")
    rows.nth(2).locator("[data-testid=workspace-path]").fill("/mnt/models")
    assert rows.nth(2).locator("[data-testid=workspace-error]").count() == 0
    # Removing `scratch` while... nothing refers to it; removing `data`'s binding would break the
    # template's steps: the server says so, and the form shows it in the workspaces section.
    rows.nth(0).locator("[data-testid=workspace-remove]").click()
    page.click("[data-testid=save]")
    server_error = page.locator("[data-testid=workspaces] [data-testid=workspace-error]").first
    server_error.wait_for()
    assert "unknown workspace 'data'" in server_error.inner_text(), server_error.inner_text()
    page.locator("[data-testid=workspaces]").scroll_into_view_if_needed()
    shot(page, "editor-workspaces", hide_toasts=True)
    page.click("[data-testid=add-workspace]")
    rows.nth(2).locator("[data-testid=workspace-name]").fill("data")
    rows.nth(2).locator("[data-testid=workspace-claim]").fill("default-data")
    rows.nth(2).locator("[data-testid=workspace-path]").fill("/mnt/data2")
    page.click("[data-testid=save]")
    page.wait_for_selector("[data-testid=version-label]:has-text('version 2')")

    spec = engine_services.pipelines.spec(pipeline_id)[0]
    stored = {b.name: (b.claim, b.path) for b in spec.task("prep").workspaces}
    assert stored == {
        "scratch": ("", ""),
        "models": ("default-models", "/mnt/models"),
        "data": ("default-data", "/mnt/data2"),
    }

    # Reloaded, the form shows what was stored.
    fresh = new_page()
    fresh.goto(f"{live_server.url}/pipelines/{pipeline_id}/edit")
    fresh.wait_for_selector(".react-flow__node")
    select_node(fresh, "prep")
    names = fresh.locator("[data-testid=workspace-name]").evaluate_all("els => els.map(e => e.value)")
    assert names == ["data", "models", "scratch"]  # stored in name order, as the export writes them

    # The catalog shows a SeqPod template's steps under its details.
    fresh.goto(f"{live_server.url}/templates/")
    card = fresh.locator("[data-testid=catalog] .myapp-card[data-template=seq-ws]")
    card.locator("button.btn-link").click()
    assert card.locator("[data-testid=seqpod-steps-list] li").evaluate_all(
        "els => els.map(e => e.dataset.stepName)"
    ) == ["write", "read"]


MUTUAL = """\
name: mutual
tasks:
  - {name: a, image: x, command: ['true'], inputs: {y: {from: b.y}}, outputs: [{name: x, path: x.txt}]}
  - {name: b, image: x, command: ['true'], inputs: {x: {from: a.x}}, outputs: [{name: y, path: y.txt}]}
"""


def test_mutual_bindings_are_refused_as_a_cycle_naming_them(new_page: Any, live_server: Any) -> None:
    page = new_page()
    page.goto(f"{live_server.url}/pipelines/new")
    page.wait_for_selector("[data-testid=canvas]")
    page.click("[data-testid=open-yaml]")
    page.fill("[data-testid=yaml-text]", MUTUAL)
    page.click("[data-testid=yaml-apply]")
    message = page.locator("[data-testid=yaml-error]").inner_text()
    assert "the graph has a cycle: a -> b -> a" in message, message
    assert "b's input x is bound to a.x; a's input y is bound to b.y" in message, message
    assert page.locator(".react-flow__node").count() == 0  # the canvas is unchanged
    # The server words it the same way (import from the pipelines page).
    page.goto(f"{live_server.url}/pipelines/")
    page.click("button:has-text('Import YAML')")
    page.fill("[data-testid=import-text]", MUTUAL)
    page.click("[data-testid=import-save]")
    page.wait_for_selector(':text("a\'s input y is bound to b.y")')
