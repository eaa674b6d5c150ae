"""Output paths stay inside the attempt's places (myapp/core/output_paths.py), checked on save."""

from __future__ import annotations

from myapp.core.output_paths import output_path_problem, parse_roots
from myapp.core.pipeline_spec import parse_pipeline
from myapp.core.validate import validate_pipeline


class NoTemplates:
    def get(self, ref: str) -> None:
        return None


def test_relative_paths_and_paths_under_an_allowed_location_are_accepted() -> None:
    for path in ("out.txt", "data/part-0", "./model", "/tmp/day.txt", "/tmp", "/data/x"):
        assert output_path_problem(path, ("/tmp", "/data")) == "", path


def test_dot_dot_absolute_paths_elsewhere_and_odd_characters_are_refused() -> None:
    assert "contains '..'" in output_path_problem("../../../../kubeconfig.json")
    assert "contains '..'" in output_path_problem("/tmp/../etc/passwd")
    assert "contains '..'" in output_path_problem("a/../b")
    assert "outside the allowed output locations (/tmp)" in output_path_problem("/etc/passwd")
    assert "outside the allowed output locations" in output_path_problem("/tmpfoo/x"), "a prefix is no parent"
    assert "line break" in output_path_problem("a\nb")
    assert parse_roots(" /tmp/ , /data,") == ("/tmp", "/data")


def test_validation_names_the_task_and_the_field() -> None:
    spec = parse_pipeline(
        {
            "name": "leak",
            "tasks": [
                {
                    "name": "steal",
                    "image": "x",
                    "command": ["true"],
                    "outputs": [
                        {"name": "cfg", "path": "../../../../kubeconfig.json"},
                        {"name": "pw", "path": "/etc/shadow"},
                        {"name": "ok", "path": "/tmp/ok.txt"},
                    ],
                }
            ],
        }
    )
    errors = {e.field: e.message for e in validate_pipeline(spec, NoTemplates())}
    assert set(errors) == {"tasks[steal].outputs[cfg].path", "tasks[steal].outputs[pw].path"}
    assert "contains '..'" in errors["tasks[steal].outputs[cfg].path"]
    assert "/etc/shadow" in errors["tasks[steal].outputs[pw].path"]
    allowed = validate_pipeline(spec, NoTemplates(), output_roots=("/tmp", "/etc"))
    assert [e.field for e in allowed] == ["tasks[steal].outputs[cfg].path"]
