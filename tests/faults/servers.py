"""Private Redis and PostgreSQL servers for the fault tests, on free ports, killed and restarted at will.

Never the shared servers on 6379 and 5432: everything here is started by the test that kills it.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing is bound to now, below the kernel's ephemeral range.

    A server here is killed and started again on the same port. A port the kernel hands out
    (bind to 0) is one it also gives to outgoing connections: while the server was down, any
    client on the machine (another test run's hundreds of connections) could take it as its
    local port, and the restart would fail with "address in use".
    """
    low = _ephemeral_low()
    for _ in range(200):
        port = random.randrange(max(1024, low - 12000), low)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below the ephemeral range")


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _wait_for_port(port: int, alive: subprocess.Popen[bytes] | None, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if alive is not None and alive.poll() is not None:
            raise RuntimeError(f"{what} exited with {alive.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on port {port}")


class PrivateRedis:
    """A `redis-server` that keeps nothing on disk: a restart brings it back empty."""

    def __init__(self, workdir: Path, *extra_args: str) -> None:
        if shutil.which("redis-server") is None:
            pytest.skip("redis-server is not installed")
        self.workdir = workdir
        self.extra_args = extra_args
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = (self.workdir / f"redis-{self.port}.log").open("ab")
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
                *self.extra_args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        _wait_for_port(self.port, self.proc, "redis-server")

    def report_logs(self) -> list[tuple[str, Path]]:
        """The server's log, for a failure's report (tests/conftest.py)."""
        return [(f"redis-server on port {self.port}", self.workdir / f"redis-{self.port}.log")]

    def kill(self) -> None:
        """kill -9 the server: every connection drops, every key is gone."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def restart(self, down: float = 1.0) -> None:
        """kill -9, stay down for `down` seconds, start again (empty) on the same port."""
        self.kill()
        time.sleep(down)
        self.start()


def postgres_bin() -> Path | None:
    """Return the newest PostgreSQL server bin directory that has initdb and pg_ctl, if any."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0
    )
    for path in reversed(found):
        if (path / "initdb").exists() and (path / "pg_ctl").exists():
            return path
    return Path(os.path.dirname(shutil.which("initdb") or "")) if shutil.which("initdb") else None


class PrivatePostgres:
    """A throwaway PostgreSQL cluster (initdb, trust auth) on a free port, run as the `postgres` user
    when the tests run as root (PostgreSQL refuses root)."""

    def __init__(self) -> None:
        bin_dir = postgres_bin()
        if bin_dir is None:
            pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
        self.bin = bin_dir
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            import pwd

            try:
                pwd.getpwnam("postgres")
            except KeyError:
                pytest.skip("running as root with no `postgres` user to run PostgreSQL as")
            if shutil.which("runuser") is None:
                pytest.skip("running as root without runuser: cannot start PostgreSQL as another user")
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self.dir = Path(tempfile.mkdtemp(prefix="myapp-pg-"))
        if self.as_user:
            shutil.chown(self.dir, "postgres")
        self.data = self.dir / "data"
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *argv: str, timeout: float = 60) -> None:
        subprocess.run(
            [*self.as_user, *argv], check=True, timeout=timeout, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )

    def _pg_ctl(self, *args: str) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "server.log"), "-w", *args)

    def init(self) -> None:
        self._run(
            str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"
        )
        # In the configuration file, not on the command line: every later start (after a crash
        # too) must use this port and never the shared server's default one.
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.dir}'\nfsync = off\nmax_connections = 200\n"
            )
        self._pg_ctl("start")

    def restart(self) -> None:
        """Stop (fast: every session is disconnected, open transactions roll back) and start again."""
        self._pg_ctl("-m", "fast", "restart")

    def crash(self, down: float = 0.5) -> None:
        """kill -9 the postmaster and start again: crash recovery, every connection dropped."""
        pid = int((self.data / "postmaster.pid").read_text().splitlines()[0])
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.05)
        # The backends notice the dead postmaster and exit; a new postmaster refuses to start
        # while any of them still holds the shared memory.
        time.sleep(down)
        deadline = time.monotonic() + 120  # on a loaded machine the old backends take seconds to go
        while time.monotonic() < deadline:
            try:
                self._pg_ctl("start")
                return
            except subprocess.CalledProcessError:
                time.sleep(0.2)
        raise RuntimeError("PostgreSQL did not start again:\n" + self.server_log()[-3000:])

    def report_logs(self) -> list[tuple[str, Path]]:
        """The server's log, for a failure's report (tests/conftest.py)."""
        return [(f"PostgreSQL on port {self.port}", self.dir / "server.log")]

    def server_log(self) -> str:
        path = self.dir / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def destroy(self) -> None:
        try:
            self._pg_ctl("-m", "immediate", "stop")
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
