"""Reading a pipeline file: the configured timezone is the default; bad files give one clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from myapp.cli.pipeline import read_spec
from myapp.core.errors import SpecError


def test_default_timezone_comes_from_configuration(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("name: tz\nschedule: {type: crontab, cron: '0 2 * * *'}\ntasks: []\n")
    assert read_spec(str(path), "Asia/Shanghai").schedule.timezone == "Asia/Shanghai"
    path.write_text("name: tz\nschedule: {type: crontab, cron: '0 2 * * *', timezone: Europe/Berlin}\ntasks: []\n")
    assert read_spec(str(path), "Asia/Shanghai").schedule.timezone == "Europe/Berlin"


@pytest.mark.parametrize(
    "content,message",
    [
        (b"\xff\xfe not utf-8", "not UTF-8"),
        (b"- a\n- list\n", "must be a YAML mapping"),
    ],
)
def test_unreadable_files(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_bytes(content)
    with pytest.raises(SpecError, match=message):
        read_spec(str(path))
    with pytest.raises(SpecError, match="cannot read"):
        read_spec(str(tmp_path / "missing.yaml"))
