"""The local executor: each attempt is a process group on the worker (PRODUCT.md §5 local).

argv lists only (no shell string is built from user input), a working directory under the
workflow space, MYAPP_* variables, output collection, and a kill of the whole group on stop
or timeout. The image of a task is ignored here.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from myapp.core.errors import MyappError
from myapp.core.inputs import InputValue, resolve_inputs
from myapp.core.model import OutputSpec
from myapp.core.params import MASK
from myapp.core.ports import TemplateCatalog
from myapp.core.render import RenderContext, render_global_params, render_task
from myapp.db.attempt_store import AttemptContext, AttemptResult
from myapp.executor.outputs import collect_outputs, materialize
from myapp.logs import AttemptLog

# If the worker process dies (kill -9), the kernel kills the task's leader process too instead of
# leaving it running unsupervised. setpriv sets PR_SET_PDEATHSIG and execs the command; a
# preexec_fn would do the same but forces fork() instead of vfork(), +2 ms per spawn.
DIE_WITH_PARENT: tuple[str, ...] = ("setpriv", "--pdeathsig", "KILL", "--") if shutil.which("setpriv") else ()
PASS_THROUGH_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "SYSTEMROOT")


@dataclass(frozen=True)
class LocalConfig:
    workflow_space: Path
    artifacts_dir: Path
    cluster_name: str
    heartbeat_interval: float
    kill_grace: float


Heartbeat = Callable[[], bool]   # False: the attempt was stopped or taken away; kill it
Now = Callable[[], datetime]


class LocalExecutor:
    """Runs attempts as local process groups."""

    def __init__(self, config: LocalConfig, catalog: TemplateCatalog) -> None:
        self.config = config
        self.catalog = catalog

    def workdir(self, ctx: AttemptContext) -> Path:
        """Return the attempt's working directory under the workflow space."""
        return self.config.workflow_space / str(ctx.run_id) / ctx.task.name / str(ctx.try_number)

    def run(self, ctx: AttemptContext, log: AttemptLog, heartbeat: Heartbeat, now: Now,
            on_start: Callable[[int], None] | None = None) -> AttemptResult:
        """Run one attempt to its end and return how it ended; never raises for task errors."""
        workdir = self.workdir(ctx)
        try:
            argv, env, outputs, shown = self._prepare(ctx, workdir)
        except MyappError as exc:
            log.write(f"[myapp] {exc}")
            return AttemptResult(succeeded=False, message=str(exc))
        log.write(f"[myapp] attempt {ctx.try_number} of task {ctx.task.name!r} in {workdir}")
        try:
            if shutil.which(argv[0], path=env.get("PATH")) is None:
                raise FileNotFoundError(2, "command not found")
            proc = subprocess.Popen(
                [*DIE_WITH_PARENT, *argv], cwd=workdir, env=env, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
            )
        except OSError as exc:
            msg = f"task {ctx.task.name!r}: cannot start {argv[0]!r}: {exc.strerror or exc}"
            log.write(f"[myapp] {msg}")
            return AttemptResult(succeeded=False, message=msg, inputs=shown)
        if on_start is not None:
            on_start(proc.pid)
        code, why = self._wait(proc, ctx, log, heartbeat, now)
        if why:
            log.write(f"[myapp] {why}")
            return AttemptResult(succeeded=False, exit_code=code, message=why, inputs=shown)
        if code != 0:
            return AttemptResult(succeeded=False, exit_code=code, message=f"exit code {code}", inputs=shown)
        try:
            store = self.config.artifacts_dir / str(ctx.run_id) / ctx.task.name / str(ctx.try_number)
            produced = collect_outputs(ctx.task.name, outputs, workdir, store)
        except (MyappError, OSError) as exc:
            log.write(f"[myapp] {exc}")
            return AttemptResult(succeeded=False, exit_code=code, message=str(exc), inputs=shown)
        return AttemptResult(succeeded=True, exit_code=0, outputs=produced, inputs=shown)

    def _prepare(self, ctx: AttemptContext, workdir: Path) -> tuple[
            tuple[str, ...], dict[str, str], tuple[OutputSpec, ...], dict[str, Any]]:
        rctx = RenderContext(
            creator=ctx.creator, runner=ctx.runner, pipeline_id=ctx.pipeline_id,
            pipeline_name=ctx.pipeline_name, run_id=ctx.run_id, task_name=ctx.task.name,
            cluster_name=self.config.cluster_name, execution_date=ctx.execution_date, params={},
        )
        params = render_global_params(ctx.spec.parameters, ctx.params, rctx)
        rctx = RenderContext(**{**rctx.__dict__, "params": params})
        resolved = resolve_inputs(ctx.task, ctx.upstream_outputs, params, ctx.debug_inputs)
        workdir.mkdir(parents=True, exist_ok=True)
        values = self._local_values(resolved, workdir)
        template = self.catalog.get(ctx.task.template) if ctx.task.template else None
        if ctx.task.template and template is None:
            raise MyappError(f"task {ctx.task.name!r}: template {ctx.task.template!r} is not registered")
        rendered = render_task(ctx.task, template, rctx, values)
        env = {k: os.environ[k] for k in PASS_THROUGH_ENV if k in os.environ}
        env.update(rendered.env)
        env.update({
            "MYAPP_RUN_ID": str(ctx.run_id), "MYAPP_USER_ID": str(ctx.user_id or ""),
            "MYAPP_TOKEN": ctx.token, "MYAPP_TASK_NAME": ctx.task.name,
            "MYAPP_TRY_NUMBER": str(ctx.try_number), "MYAPP_WORKDIR": str(workdir),
        })
        secrets = {p.name for p in template.parameters if p.type == "secret"} if template else set()
        shown = {k: {"type": v.kind, "value": MASK if k in secrets else values[k]} for k, v in resolved.items()}
        return rendered.argv, env, rendered.outputs, shown

    def _local_values(self, resolved: Mapping[str, InputValue], workdir: Path) -> dict[str, str]:
        # File inputs are copied per consumer, so one task cannot alter what another receives (R11).
        out = {}
        for name, val in resolved.items():
            out[name] = str(materialize(val.value, workdir / "inputs" / name)) if val.kind == "file" else val.value
        return out

    def _wait(self, proc: subprocess.Popen[bytes], ctx: AttemptContext, log: AttemptLog,
              heartbeat: Heartbeat, now: Now) -> tuple[int, str]:
        readers = [_pump(proc.stdout, log), _pump(proc.stderr, log)]
        why = ""
        while True:
            try:
                code = proc.wait(timeout=self.config.heartbeat_interval)
                _kill_leftovers(proc.pid)
                break
            except subprocess.TimeoutExpired:
                pass
            if ctx.deadline_at is not None and now() >= ctx.deadline_at:
                why = f"task {ctx.task.name!r} timed out after {ctx.task.timeout} s"
            elif not heartbeat():
                why = "attempt stopped"
            if why:
                code = self.kill(proc)
                break
        for reader in readers:
            reader.join(timeout=5)
        return code, why

    def kill(self, proc: subprocess.Popen[bytes]) -> int:
        """Kill the attempt's whole process group: SIGTERM, then SIGKILL after the grace period."""
        for sig, wait in ((signal.SIGTERM, self.config.kill_grace), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                return proc.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                continue
        return proc.wait()


def _kill_leftovers(pgid: int) -> None:
    # Background processes a task left behind die with it; the group id cannot be reused
    # while any member lives, so this never hits an unrelated process.
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _pump(stream: IO[bytes] | None, log: AttemptLog) -> threading.Thread:
    def run() -> None:
        assert stream is not None
        for raw in iter(stream.readline, b""):
            log.write(raw.decode("utf-8", errors="replace"))
        stream.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread
