"""YAML text <-> plain data, with the guards against hostile documents."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from myapp.core.errors import SpecError
from myapp.core.pipeline_spec import parse_pipeline, pipeline_to_dict
from myapp.yaml_io import MAX_YAML_BYTES, dump_yaml, load_yaml, load_yaml_file

PRODUCT_YAML = """\
name: daily-etl                 # [a-z0-9-], unique in its project
project: default
description: Nightly extract and load
parameters:
  - {name: day, default: "{{ execution_date[:10] }}", description: business day}
outputs:
  - {name: report, from: load.report}
schedule:
  type: crontab
  cron: "0 2 * * *"
  timezone: Asia/Shanghai
  start_time: "2026-01-01T00:00:00"
  depends_on_past: false
  expired_limit: 1
  max_active_runs: 1
  enabled: true
timeout: 3600
tasks:
  - name: extract
    template: shell
    args: {script: 'echo "{{ execution_date }}" > /tmp/day.txt'}
    outputs:
      - {name: day, path: /tmp/day.txt, type: text}
      - {name: raw, path: /tmp/raw, type: file}
    retries: 2
    timeout: 600
    resources: {cpu: "1", memory: 1Gi, gpu: 0}
  - name: load
    image: python:3.12-slim
    command: ["python", "-c", "import sys; print(sys.argv[1:])", "$day", "$raw"]
    depends_on: [extract]
    inputs:
      day: {from: extract.day}
      raw: {from: extract.raw}
      when: {from: params.day}
      mode: fast
    env: {LOG_LEVEL: info}
"""


def test_product_yaml_parses_and_round_trips_through_dump() -> None:
    spec = parse_pipeline(load_yaml(PRODUCT_YAML))  # type: ignore[arg-type]
    text = dump_yaml(pipeline_to_dict(spec))
    assert parse_pipeline(load_yaml(text)) == spec  # type: ignore[arg-type]
    assert dump_yaml(load_yaml(text)) == text


def test_unquoted_timestamps_load_as_datetimes() -> None:
    assert load_yaml("t: 2026-01-01T00:00:00\n") == {"t": datetime(2026, 1, 1)}


def test_dump_is_block_style_ordered_unicode_and_multiline_literal() -> None:
    text = dump_yaml({"name": "z", "a": "日本語", "script": "echo a\necho b\n", "list": [1, (2, 3)]})
    assert text == "name: z\na: 日本語\nscript: |\n  echo a\n  echo b\nlist:\n- 1\n- - 2\n  - 3\n"


def test_dump_writes_shared_objects_in_full() -> None:
    shared = {"k": "v"}
    assert "&" not in dump_yaml({"a": shared, "b": shared})


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("a: &x [1]\nb: *x\n", "aliases"),
        ("a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n", "aliases"),
        ("[" * 65 + "]" * 65, "nesting deeper than 64"),
        ("[" * 200_000, "nesting deeper than 64"),
        ("a: 1\na: 2\n", "duplicate key 'a'"),
        ("x:\n  - {b: 1, b: 2}\n", "duplicate key 'b'"),
        ("!!python/object/apply:os.system [echo]\n", "constructor"),
        ("a: [\n", "invalid YAML"),
        ("a: 1\n---\nb: 2\n", "single document"),
        ("n: " + "9" * 5000 + "\n", "invalid YAML"),
    ],
)
def test_hostile_yaml_is_refused_with_a_clear_error(text: str, words: str) -> None:
    with pytest.raises(SpecError, match=words):
        load_yaml(text)


def test_size_limit() -> None:
    with pytest.raises(SpecError, match="larger than 2 MiB"):
        load_yaml("a: " + "x" * MAX_YAML_BYTES)


def test_file_size_limit_is_checked_before_reading(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (MAX_YAML_BYTES + 10))
    with pytest.raises(SpecError, match="larger than"):
        load_yaml_file(big)
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"a: \xff\n")
    with pytest.raises(SpecError, match="UTF-8"):
        load_yaml_file(bad)
