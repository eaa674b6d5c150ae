"""Starting a task as its project's account (issue 14 item 2): through coreutils chroot, the process is
the same as with Popen's own switch (uid, gid, no groups, umask 077, new session, no capability), at a
vfork instead of a fork of the worker; its command is looked up as the account, without root's
capabilities; an environment unsafe for root never reaches chroot."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

from myapp.executor import launcher as launcher_mod
from myapp.executor.launcher import Launcher, find_dropper, safe_for_root
from myapp.executor.task_user import Account

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")
needs_dropper = pytest.mark.skipif(find_dropper() is None, reason="no coreutils chroot here")
ACCOUNT = Account("myapp-task-test", 2_099_901, 2_099_901)
PROBE = [
    "sh",
    "-c",
    'echo "ids=$(id -u) $(id -g) [$(id -G)]"; echo "umask=$(umask)"; grep -E "^(Uid|Gid|Groups|CapEff|CapPrm):" '
    '/proc/self/status; echo "sid=$(cut -d" " -f6 /proc/self/stat) pid=$$"; echo "x=$LD_LIBRARY_PATH"',
]


def _run(launcher: Launcher, tmp_path: Path, env: dict[str, str], argv: list[str] = PROBE) -> str:
    proc = launcher.popen(argv, cwd=tmp_path, env=env, account=ACCOUNT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return out.decode()


def _normal(text: str) -> str:
    """The probe's output without the pids (which differ from start to start)."""
    lines = text.splitlines()
    sid = next(line for line in lines if line.startswith("sid="))
    s, p = (part.split("=")[1] for part in sid.split())
    assert s == p, sid  # the task leads a session of its own
    return "\n".join(line for line in lines if not line.startswith("sid="))


@needs_root
@needs_dropper
def test_chroot_gives_the_same_process_as_popens_own_switch(tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"]}
    fast = _run(Launcher.detect(), tmp_path, env)
    old = _run(Launcher(None), tmp_path, env)
    uid = ACCOUNT.uid
    assert f"ids={uid} {uid} [{uid}]\n" in fast and "umask=0077\n" in fast, fast
    assert f"Uid:\t{uid}\t{uid}\t{uid}\t{uid}\n" in fast and f"Gid:\t{uid}\t{uid}\t{uid}\t{uid}\n" in fast, fast
    assert "CapEff:\t0000000000000000\n" in fast and "CapPrm:\t0000000000000000\n" in fast, fast
    assert _normal(fast) == _normal(old)


def test_an_environment_the_loader_or_libc_acts_on_is_unsafe_for_root() -> None:
    assert safe_for_root({"PATH": "/usr/bin", "HOME": "/x", "LANG": "C.UTF-8", "MYAPP_TOKEN": "t"})
    for name in ("LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT", "GCONV_PATH", "LOCPATH", "MALLOC_TRACE", "TMPDIR"):
        assert not safe_for_root({"PATH": "/usr/bin", name: "/tmp/x"}), name


@needs_root
@needs_dropper
def test_a_task_environment_unsafe_for_root_never_reaches_chroot(tmp_path: Path, monkeypatch: Any) -> None:
    started: list[list[str]] = []
    real = subprocess.Popen

    def spy(argv: list[str], **kw: Any) -> subprocess.Popen[bytes]:
        started.append(list(argv))
        return real(argv, **kw)

    monkeypatch.setattr(launcher_mod.subprocess, "Popen", spy)
    launcher = Launcher.detect()
    out = _run(launcher, tmp_path, {"PATH": os.environ["PATH"], "LD_LIBRARY_PATH": "/nonexistent-lib"})
    assert started[-1][0] == "sh", started  # Popen's child dropped root before exec
    assert "x=/nonexistent-lib\n" in out and f"ids={ACCOUNT.uid} " in out, out  # the task still has its variable
    _run(launcher, tmp_path, {"PATH": os.environ["PATH"]})
    assert started[-1][0] == find_dropper(), started


@needs_root
@needs_dropper
def test_a_missing_command_is_not_found_before_chroot_runs(tmp_path: Path) -> None:
    launcher = Launcher.detect()
    with pytest.raises(FileNotFoundError):
        launcher.popen(["no-such-command-here"], cwd=tmp_path, env={"PATH": "/usr/bin:/bin"}, account=ACCOUNT)
    with pytest.raises(FileNotFoundError):
        launcher.popen(["./not-here.sh"], cwd=tmp_path, env={"PATH": "/usr/bin:/bin"}, account=ACCOUNT)
    # What the account may not execute fails after the switch, saying so on stderr (no longer an OSError here).
    script = tmp_path / "private.sh"
    script.write_text("#!/bin/sh\necho ran\n")
    script.chmod(0o700)
    proc = launcher.popen(["./private.sh"], cwd=tmp_path, env={"PATH": "/usr/bin:/bin"}, account=ACCOUNT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode != 0 and b"Permission denied" in err and not out, (out, err)


def test_a_command_found_before_and_removed_since_is_not_found(tmp_path: Path) -> None:
    # Where a command was found is remembered per PATH; a command gone since is missing again.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tool = bin_dir / "found-once"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin"}
    launcher_mod._must_exist("found-once", env, tmp_path)
    launcher_mod._must_exist("found-once", env, tmp_path)  # from what was remembered
    tool.unlink()
    with pytest.raises(FileNotFoundError):
        launcher_mod._must_exist("found-once", env, tmp_path)
    (tmp_path / "other").mkdir()
    moved = tmp_path / "other" / "found-once"
    moved.write_text("#!/bin/sh\n")
    moved.chmod(0o755)
    launcher_mod._must_exist("found-once", {"PATH": f"{bin_dir}:{moved.parent}"}, tmp_path)  # searched again


@needs_root
@needs_dropper
def test_the_command_is_looked_up_as_the_account_not_with_roots_capabilities() -> None:
    # A root-only directory early on PATH (a worker's ~/.pyenv/shims) holds a `tool` the account cannot
    # reach; a reachable one comes later. util-linux setpriv searched PATH with CAP_DAC_OVERRIDE still
    # raised, so it exec'd the root-only script, whose interpreter then could not read it. (Not under
    # pytest's tmp_path: /tmp/pytest-of-root is root's only.)
    root = Path(tempfile.mkdtemp(prefix="myapp-launcher-", dir="/var/tmp"))
    try:
        root.chmod(0o755)
        private, public, work = root / "root-only", root / "public", root / "work"
        for folder, said in ((private, "wrong"), (public, "right")):
            folder.mkdir()
            tool = folder / "tool"
            tool.write_text(f"#!/bin/sh\necho {said}\n")
            tool.chmod(0o755)
        private.chmod(0o700)
        public.chmod(0o755)
        work.mkdir()
        os.chown(work, ACCOUNT.uid, ACCOUNT.gid)
        env = {"PATH": f"{private}:{public}:/usr/bin:/bin"}
        for launcher in (Launcher.detect(), Launcher(None)):
            proc = launcher.popen(["tool"], cwd=work, env=env, account=ACCOUNT)
            out, err = proc.communicate(timeout=60)
            assert (proc.returncode, out) == (0, b"right\n"), (launcher.dropper, out, err)
        # and a command named by its path in a directory the account cannot enter does not run
        proc = Launcher.detect().popen([str(private / "tool")], cwd=work, env=env, account=ACCOUNT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode != 0 and b"Permission denied" in err and not out, (out, err)
    finally:
        shutil.rmtree(root)


@needs_root
def test_a_private_mount_namespace_leaves_the_calling_thread_where_it_was(tmp_path: Path) -> None:
    """The process sees the bind; the thread that started it is back in its namespace and working
    directory, also when a mount fails (it starts no helper thread any more: docs/benchmarks.md)."""
    if launcher_mod.namespaces_refused():
        pytest.skip(launcher_mod.namespaces_refused())
    host, target = tmp_path / "host", tmp_path / "target"
    host.mkdir()
    target.mkdir()
    (host / "seen").write_text("x")
    before = (os.readlink("/proc/thread-self/ns/mnt"), os.getcwd())
    held: list[int] = []
    env = {"PATH": "/usr/bin:/bin"}
    proc = Launcher(None).popen(
        ["ls", str(target)], cwd=tmp_path, env=env, account=None, mounts=[(host, target)], held=held
    )
    out, _ = proc.communicate(timeout=60)
    assert out.decode().split() == ["seen"]
    assert (os.readlink("/proc/thread-self/ns/mnt"), os.getcwd()) == before
    assert not any(target.iterdir()), "the bind leaked into the worker's namespace"
    assert len(held) == 1 and os.readlink(f"/proc/self/fd/{held[0]}") != before[0]
    os.close(held[0])
    with pytest.raises(OSError, match="bind"):
        Launcher(None).popen(["true"], cwd=tmp_path, env=env, account=None, mounts=[(tmp_path / "gone", target)])
    assert (os.readlink("/proc/thread-self/ns/mnt"), os.getcwd()) == before
