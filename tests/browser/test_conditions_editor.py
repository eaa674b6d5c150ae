"""The editor keeps and edits a task's trigger rule and condition (docs/rules.md R13, R14): opened from
YAML they show in the task form, an edit is saved, and what the editor did not touch is written back."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.browser.canvas import import_yaml, select_node

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.timeout(240)]

YAML = """\
name: rules-in-the-editor
parameters: [{name: go, default: 'yes'}]
tasks:
  - {name: check, image: local, command: ['true'], outputs: [{name: ok, path: ok.txt}]}
  - {name: train, image: local, command: ['true'], depends_on: [check], when: "{{ tasks.check.outputs.ok }}"}
  - {name: cleanup, image: local, command: ['true'], depends_on: [train], trigger_rule: all_done}
"""


def test_trigger_rule_and_condition_show_in_the_form_and_are_saved(
    new_page: Any, live_server: Any, engine_services: Any
) -> None:
    page = new_page()
    import_yaml(page, live_server.url, YAML)
    select_node(page, "cleanup")
    assert page.input_value("[name=task-trigger-rule]") == "all_done"
    select_node(page, "train")
    assert page.input_value("[name=task-when]") == "{{ tasks.check.outputs.ok }}"
    page.select_option("[name=task-trigger-rule]", "none_failed")
    page.fill("[name=task-when]", "{{ params.go == 'yes' }}")
    page.click("[data-testid=save]")
    page.wait_for_selector("[data-testid=version-label]:has-text('version 2')")
    pipeline_id = int(re.search(r"/pipelines/(\d+)/edit$", page.url).group(1))  # type: ignore[union-attr]
    spec = engine_services.pipelines.spec(pipeline_id)[0]
    assert (spec.task("train").trigger_rule, spec.task("train").when) == ("none_failed", "{{ params.go == 'yes' }}")
    assert (spec.task("cleanup").trigger_rule, spec.task("cleanup").when) == ("all_done", "")
    assert (spec.task("check").trigger_rule, spec.task("check").when) == ("all_success", "")


KEPT_YAML = """\
name: kept-by-the-editor
tasks:
  - name: fit
    image: local
    command: ['true']
    workspaces: {data: {claim: default-data, path: /data}}
    outputs: [{name: model, path: model.bin, type: file, description: the fitted model}]
"""


def test_task_keys_without_a_form_survive_an_editor_save(new_page: Any, live_server: Any, engine_services: Any) -> None:
    # Workspaces (a form now) and an output's description (none) must be written back as they were
    # read (the editor dropped them before), whatever else the user edited.
    page = new_page()
    import_yaml(page, live_server.url, KEPT_YAML)
    select_node(page, "fit")
    page.fill("[name=task-when]", "{{ 1 == 1 }}")
    page.click("[data-testid=save]")
    page.wait_for_selector("[data-testid=version-label]:has-text('version 2')")
    pipeline_id = int(re.search(r"/pipelines/(\d+)/edit$", page.url).group(1))  # type: ignore[union-attr]
    exported = json.dumps(engine_services.pipelines.export(pipeline_id))
    assert "workspaces" in exported and "default-data" in exported and "/data" in exported, exported
    assert "the fitted model" in exported, exported
    assert "{{ 1 == 1 }}" in exported, exported
