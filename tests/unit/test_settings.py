"""Settings: defaults from config/, MYAPP_* overrides, a clear error naming a bad setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from myapp.settings import SettingsError, load_settings


def test_defaults_and_overrides(tmp_path: Path) -> None:
    s = load_settings({"MYAPP_HOME": str(tmp_path), "MYAPP_EXECUTOR": "kubernetes", "MYAPP_TIMEZONE": "Asia/Shanghai"})
    assert s.home == tmp_path and s.executor == "kubernetes" and s.timezone == "Asia/Shanghai"
    assert s.effective_database_url == f"sqlite:///{tmp_path / 'myapp.db'}"
    assert s.effective_broker_url == "filesystem://" and s.effective_redis_url is None
    r = load_settings({"MYAPP_BROKER_URL": "redis://127.0.0.1:6379/3"})
    assert r.effective_redis_url == "redis://127.0.0.1:6379/3"


@pytest.mark.parametrize(
    "env,named",
    [
        ({"MYAPP_EXECUTOR": "docker"}, "MYAPP_EXECUTOR"),
        ({"MYAPP_TIMEZONE": "Mars/Olympus"}, "MYAPP_TIMEZONE"),
        ({"MYAPP_DATABASE_URL": "not a url"}, "MYAPP_DATABASE_URL"),
        ({"MYAPP_BROKER_URL": "kafka://x"}, "MYAPP_BROKER_URL"),
        ({"MYAPP_WEB_PORT": "eighty"}, "MYAPP_WEB_PORT"),
        ({"MYAPP_PRODUCTION": "true"}, "MYAPP_SECRET_KEY"),
        ({"MYAPP_CONFIG": "/nonexistent.yaml"}, "MYAPP_CONFIG"),
        ({"MYAPP_BACKFILL_CONFIRM": "-1"}, "MYAPP_BACKFILL_CONFIRM"),
    ],
)
def test_bad_values_name_the_setting(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        load_settings(env)


def test_cli_reports_bad_setting_and_exits_2(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "MYAPP_HOME": str(tmp_path), "MYAPP_EXECUTOR": "nope"}
    out = subprocess.run([sys.executable, "-m", "myapp", "pipeline", "list"], env=env, capture_output=True, text=True)
    assert out.returncode == 2
    assert out.stderr.strip() == "myapp: error: MYAPP_EXECUTOR: 'nope' is not one of local, kubernetes"


def test_cli_reports_an_unreachable_database_in_one_line(tmp_path: Path) -> None:
    import os
    import socket
    import subprocess
    import sys

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "MYAPP_HOME": str(tmp_path),
        "MYAPP_DATABASE_URL": f"postgresql://postgres:hunter22@127.0.0.1:{port}/x",
    }
    out = subprocess.run([sys.executable, "-m", "myapp", "schedule", "tick"], env=env, capture_output=True, text=True)
    assert out.returncode == 1
    assert out.stderr.startswith(
        f"myapp: error: cannot use the database postgresql://postgres:***@127.0.0.1:{port}/x: "
    )
    assert "Traceback" not in out.stderr and "hunter22" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_task_tmp_is_private_unless_set_shared() -> None:
    assert load_settings({}).task_tmp == "private"
    assert load_settings({"MYAPP_TASK_TMP": "shared"}).task_tmp == "shared"
    with pytest.raises(SettingsError, match="MYAPP_TASK_TMP: 'pod' is not one of private, shared"):
        load_settings({"MYAPP_TASK_TMP": "pod"})
