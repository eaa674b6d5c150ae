"""The README's five-minute tour, command by command as written, against a real `myapp standalone`.

Every command of the tour's code block must exit 0 (a `&&` chain counts as its commands); the
outputs the README shows are checked where it shows them.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.test_standalone import free_port, standalone_env, start_standalone, stop_standalone

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]
REPO = Path(__file__).resolve().parents[2]


def tour_commands() -> list[str]:
    """Return the commands of the README's tour block, comments stripped, `&&` chains split."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## A five-minute tour") :]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block is not None, "the tour has no ```bash block"
    commands = []
    for line in block.group(1).splitlines():
        code = line.split("  #")[0].strip() if not line.lstrip().startswith("#") else ""
        commands += [part.strip() for part in code.split("&&") if part.strip()]
    return commands


def test_the_tour_lists_real_commands() -> None:
    commands = tour_commands()
    assert len(commands) >= 15 and all(c.startswith("myapp ") for c in commands), commands
    assert "myapp task debug parameter-passing step2 --input step1param1=hello" in commands


def test_the_readme_tour_passes_as_written(tmp_path: Path) -> None:
    env = standalone_env(tmp_path)
    proc = start_standalone(tmp_path, env, free_port())
    outputs: dict[str, str] = {}
    try:
        for command in tour_commands():
            argv = [sys.executable, "-m", "myapp", *shlex.split(command)[1:]]
            done = subprocess.run(argv, env=env, cwd=REPO, capture_output=True, text=True, timeout=240)
            assert done.returncode == 0, f"`{command}` exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
            outputs[command] = done.stdout
    finally:
        stop_standalone(proc)
    assert outputs["myapp pipeline import templates/parameter-passing.yaml"].strip() == "parameter-passing: version 1"
    assert "run 1 succeeded" in outputs["myapp pipeline run parameter-passing --wait"]
    stamped = outputs["myapp run logs 1 step2"].splitlines()
    assert [re.sub(r"^\S+ \S+ UTC  ", "", line) for line in stamped][-2:] == ["outpraram2", "file1"]
    assert outputs["myapp run logs 1 step2 --plain"].splitlines()[-2:] == ["outpraram2", "file1"]
    debug = outputs["myapp task debug parameter-passing step2 --input step1param1=hello"]
    assert re.search(r"of run [12]\)", debug) and "hello" in debug and re.search(r"debug run \d+ succeeded", debug), (
        debug
    )
    assert "daily-etl" in outputs["myapp pipeline list"]
