"""Who tasks run as on the local executor (issue 13 B1): the decision and the one-project rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from myapp.core.errors import MyappError
from myapp.executor.task_user import SHARED, SINGLE, USERS, TaskAccounts, bind_single_project, decide, describe
from myapp.settings import SettingsError, load_settings


def test_root_switches_users_unless_told_not_to() -> None:
    assert decide("auto", 0).mode == USERS
    assert decide("users", 0).mode == USERS
    assert decide("none", 0).mode == SHARED


def test_a_root_worker_without_chroot_says_each_task_start_forks_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from myapp.executor import launcher

    assert "no coreutils chroot" not in decide("auto", 0).message or launcher.find_dropper() is None
    monkeypatch.setattr(launcher, "DROPPER_PATHS", ("/nonexistent/chroot",))
    assert launcher.Launcher.detect().dropper is None
    message = decide("auto", 0).message
    assert message.startswith("tasks run as one unprivileged account per project") and "no coreutils chroot" in message
    assert "forks the whole worker" in message


def test_a_worker_that_cannot_switch_users_runs_one_project_and_says_so() -> None:
    iso = decide("auto", 1000)
    assert iso.mode == SINGLE and not iso.switches_users
    assert "cannot switch users" in iso.message and "task_isolation: none" in iso.message
    assert describe("auto", 1000) == {"mode": SINGLE, "message": iso.message}
    assert decide("none", 1000).mode == SHARED


def test_demanding_users_without_root_refuses_to_start() -> None:
    with pytest.raises(MyappError, match="MYAPP_TASK_ISOLATION: 'users' needs a worker running as root"):
        decide("users", 1000)
    assert describe("users", 1000)["mode"] == USERS  # what any worker that starts guarantees


def test_the_first_project_binds_an_unisolated_installation(tmp_path: Path) -> None:
    bind_single_project(tmp_path, 3, "a")
    bind_single_project(tmp_path, 3, "b")  # the same project again: fine
    with pytest.raises(MyappError) as err:
        bind_single_project(tmp_path, 4, "other")
    assert "task 'other': refused" in str(err.value) and "MYAPP_TASK_ISOLATION=none" in str(err.value)
    assert (tmp_path / "task_project").read_text() == "3\n"


def test_each_project_has_its_own_ids() -> None:
    accounts = TaskAccounts("myapp-task", 3_000_000, create=False)
    one, two = accounts.for_project(1), accounts.for_project(2)
    assert (one.name, one.uid, one.gid) == ("myapp-task-1", 3_000_001, 3_000_001)
    assert two.uid == 3_000_002 and accounts.for_project(1) is one


def test_a_uid_of_another_account_is_refused() -> None:
    accounts = TaskAccounts("myapp-task", 1000, create=False)
    import pwd

    try:
        taken = pwd.getpwuid(1000 + 0)
    except KeyError:
        pytest.skip("no account with uid 1000 here")
    with pytest.raises(MyappError, match=f"belongs to {taken.pw_name!r}"):
        accounts.for_project(0)


@pytest.mark.parametrize(
    ("name", "value"), [("task_isolation", "maybe"), ("task_user", "Bad Name"), ("task_uid_base", "10")]
)
def test_bad_settings_name_themselves(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=f"MYAPP_{name.upper()}"):
        load_settings({f"MYAPP_{name.upper()}": value})
