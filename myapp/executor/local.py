"""The local executor: each attempt is a process group on the worker (docs/rules.md P5 local).

argv lists only (no shell string is built from user input), a working directory under the
workflow space, MYAPP_* variables, output collection, and a kill of the whole group on stop
or timeout. The image of a task is ignored here.
"""

from __future__ import annotations

import atexit
import dataclasses
import errno
import fcntl
import functools
import json
import logging
import os
import selectors
import shutil
import signal
import stat
import subprocess
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePath
from typing import Any

from myapp.artifacts import LocalArtifacts
from myapp.core.errors import MyappError
from myapp.core.inputs import InputValue, local_value, resolve_inputs
from myapp.core.model import OutputSpec
from myapp.core.output_paths import DEFAULT_ROOTS, is_under
from myapp.core.params import MASK
from myapp.core.ports import ArtifactRepository, TemplateCatalog
from myapp.core.redact import Redactor
from myapp.core.render import RenderContext, render_global_params, render_task
from myapp.core.sandbox import Budget, RenderCancelled, render_budget
from myapp.core.values import AttemptContext, AttemptResult
from myapp.core.workspaces import apply_workspaces
from myapp.executor.launcher import Launcher, namespaces_refused
from myapp.executor.outputs import Confinement, collect_outputs
from myapp.executor.reaper import REAPER
from myapp.executor.seqpod_local import TERMINATION_ENV, render_seqpod, seqpod_failure
from myapp.executor.task_runtime import runtime_dir
from myapp.executor.task_user import Account, TaskAccounts, bind_single_project, give_to
from myapp.logs.attempt_logs import MAX_LINE, AttemptLog, Stream

log = logging.getLogger(__name__)
PASS_THROUGH_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "SYSTEMROOT")
EXIT_POLL = 0.02  # seconds between exit checks where no pidfd tells of the exit
DRAIN_TIMEOUT = 5.0  # seconds to read what is left in the pipes after the process group is gone


@dataclass(frozen=True)
class LocalConfig:
    workflow_space: Path
    artifacts_dir: Path
    cluster_name: str
    heartbeat_interval: float
    kill_grace: float
    render_timeout: float = 10.0
    confinement: Confinement = Confinement(roots=DEFAULT_ROOTS)  # where outputs may be read (item 7)
    # Who tasks run as (issue 13 B1, myapp/executor/task_user.py): one account per project when the
    # worker is root; else the worker's user, for the project recorded in `single_project_home` only.
    accounts: TaskAccounts | None = None
    private_tmp: bool = True  # each attempt's own /tmp (setting task_tmp; docs/security.md §3)
    single_project_home: Path | None = None
    # Where file outputs are stored and fetched from (myapp/artifacts/); None: artifacts_dir on this disk.
    artifacts: ArtifactRepository | None = None


Heartbeat = Callable[[], bool]  # False: the attempt was stopped or taken away; kill it
Now = Callable[[], datetime]


class LocalExecutor:
    """Runs attempts as local process groups."""

    def __init__(self, config: LocalConfig, catalog: TemplateCatalog) -> None:
        self.config = config
        self.catalog = catalog
        self.artifacts = config.artifacts or LocalArtifacts(config.artifacts_dir)
        self.launcher = Launcher.detect()

    def workdir(self, ctx: AttemptContext) -> Path:
        """Return the attempt's working directory under the workflow space."""
        return self.config.workflow_space / str(ctx.run_id) / ctx.task.name / str(ctx.try_number)

    def run(
        self,
        ctx: AttemptContext,
        log: AttemptLog,
        heartbeat: Heartbeat,
        now: Now,
        on_start: Callable[[int], None] | None = None,
    ) -> AttemptResult:
        """Run one attempt to its end and return how it ended; never raises for task errors."""
        workdir = self.workdir(ctx)
        try:
            account = self._account(ctx)
        except MyappError as exc:
            log.write(str(exc), Stream.SYS)
            return AttemptResult(succeeded=False, message=str(exc))
        # Rendering and copying inputs stop as soon as the attempt is stopped or times out: a
        # render bomb never holds this worker slot (issue 13 B5).
        stop = _StopAsker(ctx, heartbeat, now, self.config.heartbeat_interval)
        try:
            with render_budget(Budget(self.config.render_timeout, cancelled=stop)):
                argv, env, outputs, shown, secret_values = self._prepare(ctx, workdir, account)
        except RenderCancelled:
            log.write(stop.why, Stream.SYS)
            return AttemptResult(succeeded=False, message=stop.why)
        except (MyappError, OSError) as exc:
            log.write(str(exc), Stream.SYS)
            return AttemptResult(succeeded=False, message=str(exc))
        # What the task prints of its secrets or its run token never reaches the live or archived log.
        log.redact_with(_redactor((*secret_values, ctx.token)))
        held: list[int] = []  # the descriptor of the process's mount namespace, let go of after its exit
        lock: list[int] = []  # the task directory's shared lock, let go of once the private /tmp is removed
        try:
            try:
                private, mounts = self._private_places(workdir, account, env, lock)
            except OSError as exc:
                msg = f"task {ctx.task.name!r}: cannot make its private /tmp: {exc}"
                log.write(msg, Stream.SYS)
                return AttemptResult(succeeded=False, message=msg, inputs=shown)
            return self._run_process(
                ctx, log, heartbeat, now, on_start, workdir, account, argv, env, outputs, shown, private, mounts, held
            )
        finally:
            if self.config.private_tmp:  # like a pod's /tmp, gone with the attempt (its outputs were read)
                REMOVER.remove(private_base(workdir), held, lock)

    def _run_process(
        self,
        ctx: AttemptContext,
        log: AttemptLog,
        heartbeat: Heartbeat,
        now: Now,
        on_start: Callable[[int], None] | None,
        workdir: Path,
        account: Account | None,
        argv: tuple[str, ...],
        env: dict[str, str],
        outputs: tuple[OutputSpec, ...],
        shown: dict[str, Any],
        private: tuple[tuple[str, Path], ...],
        mounts: tuple[tuple[Path, Path], ...],
        held: list[int],
    ) -> AttemptResult:
        try:
            # A command without a slash is looked up in the PATH of `env` (as execvpe does).
            proc = self.launcher.popen(argv, cwd=workdir, env=env, account=account, mounts=mounts, held=held)
        except OSError as exc:
            why = "command not found" if isinstance(exc, FileNotFoundError) and "/" not in argv[0] else exc.strerror
            msg = f"task {ctx.task.name!r}: cannot start {argv[0]!r}: {why or exc}"
            log.write(msg, Stream.SYS)
            return AttemptResult(succeeded=False, message=msg, inputs=shown)
        # If this worker dies (kill -9 included), its reaper kills the group (myapp/executor/reaper.py).
        REAPER.register(proc.pid)
        try:
            if on_start is not None:
                on_start(proc.pid)
            code, why = self._wait(proc, ctx, log, heartbeat, now)
        except BaseException:
            _kill_leftovers(proc.pid)  # the leader is not reaped yet, so its group id is still ours
            raise
        finally:
            REAPER.forget(proc.pid)  # the group is gone: _wait killed what was left of it
        if why:
            log.write(why, Stream.SYS)
            return AttemptResult(succeeded=False, exit_code=code, message=why, inputs=shown)
        if code != 0:
            msg = seqpod_failure(ctx.task.name, workdir, code) if TERMINATION_ENV in env else f"exit code {code}"
            return AttemptResult(succeeded=False, exit_code=code, message=msg, inputs=shown)
        try:
            confinement = dataclasses.replace(
                self.config.confinement, owner=None if account is None else account.uid, private=private
            )
            produced = collect_outputs(
                ctx.task.name,
                outputs,
                workdir,
                confinement,
                artifacts=self.artifacts,
                run_id=ctx.run_id,
                try_number=ctx.try_number,
            )
        except (MyappError, OSError) as exc:
            log.write(str(exc), Stream.SYS)
            return AttemptResult(succeeded=False, exit_code=code, message=str(exc), inputs=shown)
        return AttemptResult(succeeded=True, exit_code=0, outputs=produced, inputs=shown)

    def _account(self, ctx: AttemptContext) -> Account | None:
        """Return the account the attempt runs as (None: the worker's own); MyappError if refused."""
        if self.config.single_project_home is not None:
            bind_single_project(self.config.single_project_home, ctx.project_id, ctx.task.name)
        return self.config.accounts.for_project(ctx.project_id) if self.config.accounts is not None else None

    def _private_places(
        self, workdir: Path, account: Account | None, env: dict[str, str], lock: list[int]
    ) -> tuple[tuple[tuple[str, Path], ...], tuple[tuple[Path, Path], ...]]:
        """Make the attempt's private /tmp (and output roots); return (root, host directory) pairs for reading
        outputs and (host directory, target) mounts for its process (docs/security.md §3).

        A root worker gives the process a mount namespace with a fresh directory bound at /tmp and at
        every other output root (not `/`), as a pod has its own; the workflow space stays reachable at
        its path where it lies in one of them. A worker that is not root can only point TMPDIR at it.
        The directories are the worker's choice, siblings of the working directory in the task's
        directory (the worker's, 0711), handed to the account; they are removed after the attempt.
        From before they are made until they are removed, the task directory is locked (shared;
        `lock` gets the descriptor): the sweep of leftovers never removes them meanwhile.
        """
        if not self.config.private_tmp:
            return (), ()
        base = private_base(workdir)
        held_lock = lock_task_dir(workdir.parent)
        if held_lock is not None:  # always: a shared lock waits
            lock.append(held_lock)
        REMOVER.wait(base)  # this process's removal of an earlier attempt's (the same try, lost) is over
        if base.is_symlink() or base.is_file():
            base.unlink()
        elif base.exists():  # left by a lost attempt of the same try
            shutil.rmtree(base)
        base.mkdir(mode=0o711)
        if namespaces_refused():
            tmp = base / "tmp"
            tmp.mkdir(mode=0o700)
            if account is not None:
                os.chown(tmp, account.uid, account.gid)
            env["TMPDIR"] = str(tmp)
            return (), ()
        if "TMPDIR" in env and env["TMPDIR"] == os.environ.get("TMPDIR"):  # the worker's: outside the private /tmp
            del env["TMPDIR"]
        space, layout = _private_layout(self.config.confinement.roots, self.config.workflow_space)
        private, mounts = [], []
        for i, (root, space_in_root) in enumerate(layout):
            host = base / str(i)
            host.mkdir(mode=0o700)
            if space_in_root is not None:  # keep the workflow space at its path (the task's directory is there)
                where = host / space_in_root
                where.mkdir(mode=0o755, parents=True)
                mounts.append((space, where))
            if account is not None:
                os.chown(host, account.uid, account.gid)
            private.append((root, host))
            mounts.append((host, Path(root)))
        return tuple(private), tuple(mounts)

    def _make_workdir(self, workdir: Path, account: Account | None) -> None:
        """Create the attempt's working directory; under a task account, with parents only the worker may change.

        The run's and the task's directories are the worker's (mode 0711: a task can pass through
        to its own directory, not list or add to them), so no task can plant a link the worker (root)
        would follow when it creates the next attempt's directory or copies inputs into it.
        """
        if account is None:
            workdir.mkdir(parents=True, exist_ok=True)
            return
        workdir.parent.parent.parent.mkdir(parents=True, exist_ok=True)
        for parent in (workdir.parent.parent, workdir.parent):
            try:
                parent.mkdir(mode=0o711)
            except FileExistsError:
                pass
            info = parent.lstat()  # a link is no directory here: lstat does not follow it
            if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
                raise MyappError(f"{parent} is not a directory of the worker's own: refusing to run a task in it")
        if workdir.is_symlink():
            workdir.unlink()
        elif workdir.exists():  # left by a lost attempt of the same try: its files are the task's, not trusted
            shutil.rmtree(workdir)
        workdir.mkdir(mode=0o700)

    def _prepare(
        self, ctx: AttemptContext, workdir: Path, account: Account | None
    ) -> tuple[tuple[str, ...], dict[str, str], tuple[OutputSpec, ...], dict[str, Any], list[str]]:
        rctx = RenderContext(
            creator=ctx.creator,
            runner=ctx.runner,
            pipeline_id=ctx.pipeline_id,
            pipeline_name=ctx.pipeline_name,
            run_id=ctx.run_id,
            task_name=ctx.task.name,
            cluster_name=self.config.cluster_name,
            execution_date=ctx.execution_date,
            params={},
        )
        params = render_global_params(ctx.spec.parameters, ctx.params, rctx)
        rctx = RenderContext(**{**rctx.__dict__, "params": params})
        resolved = resolve_inputs(ctx.task, ctx.upstream_outputs, params, ctx.debug_inputs)
        self._make_workdir(workdir, account)
        values = self._local_values(resolved, workdir)
        if account is not None:
            give_to(workdir, account)
        template = self.catalog.get(ctx.task.template) if ctx.task.template else None
        if ctx.task.template and template is None:
            raise MyappError(f"task {ctx.task.name!r}: template {ctx.task.template!r} is not registered")
        secret_params = {p.name for p in ctx.spec.parameters if p.secret}
        task, template = apply_workspaces(ctx.task, template, self._workspaces(ctx, account))
        if template is not None and template.kind == "seqpod":  # the steps, in one runner process
            rendered = render_seqpod(task, template, rctx, values, secret_params)
        else:
            rendered = render_task(task, template, rctx, values, secret_params)
        env = {k: os.environ[k] for k in PASS_THROUGH_ENV if k in os.environ}
        env.update(rendered.env)
        env.update(
            {
                "MYAPP_RUN_ID": str(ctx.run_id),
                "MYAPP_USER_ID": str(ctx.user_id or ""),
                "MYAPP_TOKEN": ctx.token,
                "MYAPP_TASK_NAME": ctx.task.name,
                "MYAPP_TRY_NUMBER": str(ctx.try_number),
                "MYAPP_WORKDIR": str(workdir),
            }
        )
        if account is not None:  # the worker's HOME is not the task's
            env["HOME"] = str(workdir)
            # the built-in entrypoints (python3 -m myapp.builtins.http) where the account can import them
            runtime = str(runtime_dir(self.config.workflow_space))
            env["PYTHONPATH"] = f"{env['PYTHONPATH']}:{runtime}" if env.get("PYTHONPATH") else runtime
        secrets = {p.name for p in template.parameters if p.type == "secret"} if template else set()
        secrets |= rendered.secret_env
        shown = {k: {"type": v.kind, "value": MASK if k in secrets else values[k]} for k, v in resolved.items()}
        for k, v in resolved.items():  # where a file came from: a retried or copied debug run fetches it again
            if v.kind == "file":
                shown[k]["path"] = v.value
            elif v.kind == "files":
                shown[k]["paths"] = json.loads(v.value)
        secret_values = [rendered.env[k] for k in rendered.secret_env]
        return rendered.argv, env, rendered.outputs, shown, secret_values

    def _workspaces(self, ctx: AttemptContext, account: Account | None) -> dict[str, str]:
        """Return NAME -> the project's directory of each workspace the task binds (created on first use).

        Locally a workspace is `workflow_space/workspaces/project-ID/NAME` (`shared` without a
        project): a project's tasks see their own workspaces only (docs/security.md §3).
        """
        base = (
            self.config.workflow_space
            / "workspaces"
            / (f"project-{ctx.project_id}" if ctx.project_id is not None else "shared")
        )
        paths = {}
        for binding in ctx.task.workspaces:
            where = base / binding.name
            if not where.is_dir():
                where.mkdir(parents=True, exist_ok=True)
                if account is not None:
                    give_to(where, account)
            elif account is not None and where.stat().st_uid != account.uid:
                raise MyappError(f"task {ctx.task.name!r}: workspace {binding.name!r} ({where}) is not the project's")
            paths[binding.name] = str(where)
        return paths

    def _local_values(self, resolved: Mapping[str, InputValue], workdir: Path) -> dict[str, str]:
        # File inputs are fetched per consumer, so one task cannot alter what another receives (R11).
        out = {}
        for name, val in resolved.items():
            if val.kind != "text":
                Budget.current().check_time()  # a stop between two copies frees the slot
            out[name] = local_value(val, workdir / "inputs" / name, self._fetch)
        return out

    def _fetch(self, artifact: str, dest: PurePath) -> str:
        Budget.current().check_time()
        return str(self.artifacts.fetch(artifact, Path(dest)))

    def _wait(
        self, proc: subprocess.Popen[bytes], ctx: AttemptContext, log: AttemptLog, heartbeat: Heartbeat, now: Now
    ) -> tuple[int, str]:
        """Pump the output into the log until the process exits, heart-beating; kill it when told to."""
        watch = _Watch(proc, log)
        try:
            why = ""
            while not watch.pump(until=time.monotonic() + self.config.heartbeat_interval):
                if ctx.deadline_at is not None and now() >= ctx.deadline_at:
                    why = f"task {ctx.task.name!r} timed out after {ctx.task.timeout} s"
                elif not heartbeat():
                    why = "attempt stopped"
                if why:
                    code = self.kill(watch)
                    break
            else:
                code = proc.wait()
                _kill_leftovers(proc.pid)
            watch.drain(time.monotonic() + DRAIN_TIMEOUT)
        finally:
            watch.close()
        return code, why

    def kill(self, watch: _Watch) -> int:
        """Kill the attempt's whole process group: SIGTERM, then SIGKILL after the grace period.

        The output is read meanwhile, so a task writing while it shuts down never blocks.
        """
        for sig, wait in ((signal.SIGTERM, self.config.kill_grace), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(watch.proc.pid, sig)
            except ProcessLookupError:
                pass
            if watch.pump(until=time.monotonic() + wait):
                break
        code = watch.proc.wait()
        _kill_leftovers(watch.proc.pid)
        return code


class _StopAsker:
    """Whether an attempt that has not started its process yet should stop: asked while it renders.

    Looks at the deadline each time and heart-beats at most once per heartbeat interval, so a
    rendering asking every few milliseconds costs no database round trip.
    """

    def __init__(self, ctx: AttemptContext, heartbeat: Heartbeat, now: Now, interval: float) -> None:
        self.ctx, self.heartbeat, self.now, self.interval = ctx, heartbeat, now, interval
        self.next_beat = time.monotonic() + interval
        self.why = ""

    def __call__(self) -> bool:
        if self.ctx.deadline_at is not None and self.now() >= self.ctx.deadline_at:
            self.why = f"task {self.ctx.task.name!r} timed out after {self.ctx.task.timeout} s (while rendering)"
        elif time.monotonic() >= self.next_beat:
            self.next_beat = time.monotonic() + self.interval
            if not self.heartbeat():
                self.why = "attempt stopped (while rendering)"
        return bool(self.why)


class _Watch:
    """Reads a process's stdout and stderr into its log, line by line, in the calling thread.

    One selector waits for output, the exit (a pidfd where the platform has one, else a short
    poll) and the log's next flush, so a short attempt costs no thread and no polling delay.
    """

    def __init__(self, proc: subprocess.Popen[bytes], log: AttemptLog) -> None:
        self.proc = proc
        self.log = log
        self.selector = selectors.DefaultSelector()
        self.streams = {stream.fileno(): stream for stream in (proc.stdout, proc.stderr) if stream is not None}
        self.kinds = {
            proc.stdout.fileno() if proc.stdout else -1: Stream.OUT,
            proc.stderr.fileno() if proc.stderr else -2: Stream.ERR,
        }
        self.partial = {fd: bytearray() for fd in self.streams}
        self.cutting: set[int] = set()  # streams inside a line already cut at MAX_LINE
        for fd in self.streams:
            self.selector.register(fd, selectors.EVENT_READ)
        self.pidfd: int | None = None
        if hasattr(os, "pidfd_open"):
            try:
                self.pidfd = os.pidfd_open(proc.pid)
                self.selector.register(self.pidfd, selectors.EVENT_READ)
            except OSError:  # an old kernel
                self.pidfd = None

    def pump(self, until: float) -> bool:
        """Read output until the process exits (True) or the monotonic time `until` (False)."""
        while self.proc.poll() is None:
            timeout = until - time.monotonic()
            if timeout <= 0:
                return False
            self._select(timeout if self.pidfd is not None else min(timeout, EXIT_POLL))
        return True

    def drain(self, until: float) -> None:
        """Read what is left in the pipes until both end or the monotonic time `until`."""
        if self.pidfd is not None:
            self.selector.unregister(self.pidfd)
            os.close(self.pidfd)
            self.pidfd = None
        while self.streams and (timeout := until - time.monotonic()) > 0:
            self._select(timeout)

    def _select(self, timeout: float) -> None:
        due = self.log.flush_due_in()
        for key, _ in self.selector.select(timeout if due is None else min(timeout, due)):
            if key.fd in self.streams:
                self._read(key.fd)
        self.log.flush_if_due()

    def _read(self, fd: int) -> None:
        chunk = os.read(fd, 65536)
        if not chunk:  # end of the stream: its last line may lack a newline
            if self.partial[fd] and fd not in self.cutting:
                self.log.write(self.partial[fd].decode("utf-8", errors="replace"), self.kinds[fd])
            self.selector.unregister(fd)
            self.streams.pop(fd).close()
            return
        buf = self.partial[fd]
        buf += chunk
        start = 0
        while (end := buf.find(b"\n", start)) >= 0:
            if fd in self.cutting:  # the rest of a cut line is dropped
                self.cutting.discard(fd)
            else:
                self.log.write(buf[start : end + 1].decode("utf-8", errors="replace"), self.kinds[fd])
            start = end + 1
        del buf[:start]
        if len(buf) > MAX_LINE and fd not in self.cutting:  # the log cuts it; keep no more of it
            self.log.write(buf.decode("utf-8", errors="replace"), self.kinds[fd])
            self.cutting.add(fd)
        if fd in self.cutting:
            buf.clear()

    def close(self) -> None:
        """Release the selector, the pidfd and any pipe still open."""
        self.selector.close()
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None
        for stream in self.streams.values():
            stream.close()
        self.streams.clear()


class _Remover:
    """Removes attempts' private /tmp directories, and closes their mount namespaces, in background threads.

    Off the task-to-task path: an rmdir waits for the disk (3-5 ms each on an ext4 mounted with
    `discard`, almost no CPU), and the last reference to a mount namespace tears its mounts down
    (an RCU grace period). Up to MAX_THREADS threads, started when there is work and none is idle,
    so removals overlap under a high rate. A removal not yet done when the worker exits is done
    at exit (atexit); one lost with the process (kill -9, the OOM killer, an `os._exit` such as a
    pool child's) stays until the sweep of leftovers removes it (myapp/executor/private_tmp.py).
    """

    MAX_THREADS = 4

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._forked)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        self._done = threading.Condition(self._lock)
        self._queue: deque[tuple[Path, list[int], list[int]]] = deque()
        self._pending: Counter[Path] = Counter()
        self._threads = 0
        self._idle = 0

    def _forked(self) -> None:  # the parent's threads are not in the child; its queue is the parent's
        for _, fds, locks in self._queue:
            for fd in (*fds, *locks):
                try:
                    os.close(fd)  # the child's copy: the parent closes its own
                except OSError:
                    pass
        self._reset()

    def remove(self, path: Path, fds: list[int], locks: Sequence[int] = ()) -> None:
        """Close `fds`, then remove the directory `path` (with all it holds), then close `locks`, soon,
        in the background."""
        with self._lock:
            self._queue.append((path, list(fds), list(locks)))
            self._pending[path] += 1
            if self._idle == 0 and self._threads < self.MAX_THREADS:
                self._threads += 1
                threading.Thread(target=self._run, name="myapp-private-remover", daemon=True).start()
            else:
                self._work.notify()

    def wait(self, path: Path | None = None, timeout: float = 60.0) -> bool:
        """Wait until `path` (every path when None) queued here is removed; False if `timeout` passed first."""
        with self._lock:
            return self._done.wait_for(
                lambda: not self._pending if path is None else path not in self._pending, timeout
            )

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._queue:
                    self._idle += 1
                    self._work.wait()
                    self._idle -= 1
                path, fds, locks = self._queue.popleft()
            try:
                for fd in fds:
                    os.close(fd)
                shutil.rmtree(path, ignore_errors=True)
            except OSError:
                pass
            finally:
                for fd in locks:  # after the removal: until then the sweep leaves `path` alone
                    try:
                        os.close(fd)
                    except OSError:
                        pass
                with self._lock:
                    self._pending[path] -= 1
                    if self._pending[path] <= 0:
                        del self._pending[path]
                    self._done.notify_all()


REMOVER = _Remover()
atexit.register(REMOVER.wait, None, 10.0)


@functools.lru_cache(maxsize=64)
def _redactor(secrets: tuple[str, ...]) -> Redactor:
    """Return a Redactor of `secrets`, made once for the attempts that share them: the tasks of one run
    share its token (its masks are 20-odd encoded forms, 0.05-0.15 ms to build; issue 14)."""
    return Redactor(secrets)


def private_base(workdir: Path) -> Path:
    """Return the directory of an attempt's private /tmp: `RUN/TASK/.TRY-private`, next to its workdir."""
    return workdir.parent / f".{workdir.name}-private"


def lock_task_dir(task_dir: Path, *, exclusive: bool = False) -> int | None:
    """Return a descriptor of `task_dir` holding a lock on it (flock), or None if `exclusive` and taken.

    Shared: an attempt holds it from before it makes its private /tmp until that is removed
    (waiting, if need be, for a sweep's short exclusive hold). Exclusive, never waiting: the sweep
    of leftovers (myapp/executor/private_tmp.py) takes it to move one away, so it never removes
    the private /tmp of an attempt running on this machine. The lock goes with the process: a
    worker killed lets go of it at once. On a file system that refuses flock the descriptor comes
    back unlocked (said once in the log): the sweep then relies on the database's word alone.
    """
    fd = os.open(task_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, (fcntl.LOCK_EX | fcntl.LOCK_NB) if exclusive else fcntl.LOCK_SH)
    except BlockingIOError:
        os.close(fd)
        return None
    except OSError as exc:
        if exc.errno not in _NO_LOCKS:
            os.close(fd)
            raise
        if not _NO_LOCKS_SAID:  # once per process: neither attempts nor the sweep can wait for it
            _NO_LOCKS_SAID.append(task_dir)
            log.warning(
                "the workflow space does not take locks (%s on %s): the private /tmp sweep relies on "
                "the database alone",
                exc,
                task_dir,
            )
        return fd  # not locked
    except BaseException:
        os.close(fd)
        raise
    return fd


# flock refused by the file system (some network file systems), not by another holder.
_NO_LOCKS = frozenset({errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL, errno.EBADF})
_NO_LOCKS_SAID: list[Path] = []


@functools.lru_cache(maxsize=16)
def _private_layout(roots: tuple[str, ...], workflow_space: Path) -> tuple[Path, tuple[tuple[str, str | None], ...]]:
    """Return the workflow space's real path and the private roots, each with where the space lies inside
    it (None: not inside): worked out once per process and setting, not per attempt (a `resolve` and a
    `relpath` of the space, the roots' listing; issue 14)."""
    space = workflow_space.resolve()
    layout = tuple(
        (root, os.path.relpath(space, root) if is_under(str(space), root) else None) for root in _private_roots(roots)
    )
    return space, layout


def _private_roots(roots: tuple[str, ...]) -> list[str]:
    """Return /tmp and the output roots made private per attempt: never `/`, none inside another."""
    wanted = sorted({"/tmp", *(r.rstrip("/") for r in roots if r.rstrip("/"))})
    out: list[str] = []
    for root in wanted:
        if not any(is_under(root, kept) for kept in out) and os.path.isdir(root):
            out.append(root)
    return out


def _kill_leftovers(pgid: int) -> None:
    # Background processes a task left behind die with it; the group id cannot be reused
    # while any member lives, so this never hits an unrelated process.
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
