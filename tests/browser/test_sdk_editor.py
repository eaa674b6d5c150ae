"""A workflow written with myapp.sdk opens in the editor: imported as YAML, its OPs are python nodes with
their code and bindings, it validates, saves and runs from the editor, and reads back as the same OPs."""

from __future__ import annotations

import re
from typing import Any

import pytest

from myapp.sdk import PythonOPTemplate, Step, Workflow
from tests.browser.canvas import GREEN, import_yaml, node, run_from_editor, select_node, wait_color
from tests.browser.conftest import shot
from tests.unit.sdk.ops import WriteFile, read_files

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.timeout(240)]


def workflow() -> Workflow:
    wf = Workflow("sdk-in-the-editor", parameters={"greeting": "Hello"}, dag=True)
    write = Step("write", PythonOPTemplate(WriteFile), parameters={"msg": wf.parameters["greeting"], "number": 3})
    read = Step(
        "read",
        PythonOPTemplate(read_files),
        artifacts={"files": write.outputs.artifacts["out_art"]},
        parameters={"length": write.outputs.parameters["length"]},
    )
    return wf.add([write, read])


def test_an_sdk_workflow_opens_validates_saves_and_runs_in_the_editor(
    new_page: Any, live_server: Any, engine_services: Any
) -> None:
    wf = workflow()
    page = new_page()
    import_yaml(page, live_server.url, wf.to_yaml())
    assert node(page, "write").count() == 1 and node(page, "read").count() == 1
    page.locator(".react-flow__edge").first.wait_for(state="attached")
    assert page.locator(".react-flow__edge").count() == 1  # the edge the bindings imply
    select_node(page, "read")
    code = page.input_value("[data-param=code]")
    assert "def read_files(" in code and "_m.main(globals(), 'read_files'" in code
    shot(page, "editor-sdk")
    page.click("[data-testid=validate]")
    page.wait_for_selector(".myapp-toast:has-text('valid')")
    pipeline_id = int(re.search(r"/pipelines/(\d+)/edit$", page.url).group(1))  # type: ignore[union-attr]
    # Saved by the editor (it writes the canvas positions), the pipeline still reads back as the same OPs.
    page.click("[data-testid=auto-layout]")
    page.click("[data-testid=save]")
    page.wait_for_selector("[data-testid=version-label]:has-text('version 2')")
    back = Workflow.from_spec(engine_services.pipelines.spec(pipeline_id)[0])
    assert [s.name for s in back.steps] == ["write", "read"]
    assert all(s.template is not None for s in back.steps), [s.raw_task for s in back.steps]
    assert back.step("read").template.signature == wf.step("read").template.signature  # type: ignore[union-attr]
    assert all(s.position is not None for s in back.steps)
    run_from_editor(page)
    wait_color(page, "write", GREEN)
    wait_color(page, "read", GREEN)
