"""Submitting a workflow and following its run: to a server over REST, or to a local installation.

`Workflow.submit()` saves the pipeline (a new version when it changed) and starts a manual run:
- on a server when `server=Server(...)` is given, MYAPP_URL is set or `myapp login` kept a sign-in
  (server.py);
- else on the local installation the `myapp` command uses (same MYAPP_HOME, database and broker),
  in-process: a running `myapp standalone` or `myapp worker` executes it.
The returned RunHandle reads the run the same way on both: state, steps, logs, outputs, artifacts.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from myapp.sdk.runtime import MANIFEST, decode_parameter, list_item, unwrap_artifact
from myapp.sdk.server import RestBackend, Server, SubmitError, fetch_list

if TYPE_CHECKING:
    from myapp.sdk.workflow import Workflow

TERMINAL = frozenset({"succeeded", "failed", "stopped"})


class Backend(Protocol):
    """What a RunHandle reads a run through."""

    def submit(self, yaml_text: str, params: Mapping[str, str]) -> tuple[int, int]: ...
    def run_detail(self, run_id: int) -> dict[str, Any]: ...
    def log_text(self, run_id: int, task: str, try_number: int | None) -> str: ...
    def fetch_artifact(self, run_id: int, task: str, output: str, dest: Path) -> Path: ...
    def act(self, run_id: int, action: str) -> None: ...


class LocalBackend:
    """Runs on the local installation (the database and broker of `myapp`'s settings), in-process."""

    def __init__(self, services: Any = None) -> None:
        self._services = services
        self._wired = services is not None  # given services come wired (their dispatch) by the caller

    @property
    def services(self) -> Any:
        """Return the installation's services, built on first use from MYAPP_* settings."""
        if self._services is None:
            from myapp.services import build_services
            from myapp.settings import load_settings

            self._services = build_services(load_settings())
        return self._services

    def submit(self, yaml_text: str, params: Mapping[str, str]) -> tuple[int, int]:
        from myapp.cli.pipeline import admin_id, attach_dispatch, runner_name
        from myapp.core.pipeline_spec import parse_pipeline
        from myapp.core.states import Trigger
        from myapp.core.values import NewRun
        from myapp.yaml_io import load_yaml

        svc = self.services
        spec = parse_pipeline(load_yaml(yaml_text), default_timezone=svc.settings.timezone)  # type: ignore[arg-type]
        if not self._wired:  # send the run's tasks to the installation's broker, as `myapp pipeline run` does
            attach_dispatch(svc)
            self._wired = True
        now = svc.clock.now()
        user = admin_id(svc)
        saved = svc.pipelines.save(spec, now, user_id=user, message="myapp.sdk")
        run_id = svc.runs.create_run(
            NewRun(
                pipeline_id=saved.pipeline_id,
                trigger=Trigger.MANUAL,
                execution_date=now,
                params=dict(params),
                user_id=user,
                runner=runner_name(),
            ),
            now,
        )
        return saved.pipeline_id, int(run_id)

    def run_detail(self, run_id: int) -> dict[str, Any]:
        from myapp.db.run_views import run_detail

        with self.services.db.read() as s:
            return run_detail(s, run_id)

    def log_text(self, run_id: int, task: str, try_number: int | None) -> str:
        from myapp.logs.attempt_logs import LogKey

        number = try_number or _task(self.run_detail(run_id), task)["try_number"]
        entries, _ = self.services.logs.entries(LogKey(run_id, task, number), 0)
        return "".join(e.plain for e in entries)

    def fetch_artifact(self, run_id: int, task: str, output: str, dest: Path) -> Path:
        produced = _task(self.run_detail(run_id), task).get("outputs", {}).get(output)
        if isinstance(produced, Mapping) and produced.get("type") == "files":  # one artifact per item
            paths = list(produced.get("paths") or [])
            return fetch_list(
                dest / output,
                [p is not None for p in paths],
                lambda i, into: Path(self.services.artifacts.fetch(str(paths[i]), into)),
            )
        if not isinstance(produced, Mapping) or produced.get("type") != "file":
            raise SubmitError(f"step {task!r} of run {run_id} has no file output {output!r}")
        # Through the installation's artifact repository: its disk, or S3 (myapp/artifacts/).
        return Path(self.services.artifacts.fetch(str(produced["path"]), dest))

    def act(self, run_id: int, action: str) -> None:
        from myapp.cli.pipeline import runner_name
        from myapp.core.errors import MyappError

        svc = self.services
        try:
            if action == "stop":
                svc.runs.stop_run(run_id, svc.clock.now(), by=runner_name())
            else:
                svc.runs.retry_run(run_id, svc.clock.now())
        except MyappError as exc:  # not found, already finished, nothing to retry
            raise SubmitError(f"{action} run {run_id}: {exc}") from None


def _task(detail: Mapping[str, Any], name: str) -> dict[str, Any]:
    found = next((t for t in detail.get("tasks", []) if t["name"] == name), None)
    if found is None:
        raise SubmitError(f"run {detail.get('id')} has no step {name!r}")
    return dict(found)


class RunHandle:
    """A submitted run: `wait()`, `status()`, `steps()`, `logs(step)`, `parameters(step)`, `download_artifact`,
    `stop()`, `retry()`."""

    def __init__(self, backend: Backend, run_id: int, pipeline_id: int, workflow: Workflow | None = None) -> None:
        self.backend, self.id, self.pipeline_id, self.workflow = backend, run_id, pipeline_id, workflow

    def detail(self) -> dict[str, Any]:
        """Return the run as the API gives it (state, params, tasks with attempts and outputs)."""
        return self.backend.run_detail(self.id)

    def status(self) -> str:
        """Return the run's state: queued, running, succeeded, failed or stopped."""
        return str(self.detail()["state"])

    query_status = status  # dflow's name

    def wait(self, timeout: float | None = None, poll: float = 0.5) -> str:
        """Wait until the run is finished (TimeoutError after `timeout` seconds); return its state."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            state = self.status()
            if state in TERMINAL:
                return state
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"run {self.id} is still {state} after {timeout} s")
            time.sleep(poll)

    def stop(self) -> None:
        """Stop the run: running steps are killed, pending ones never start (SubmitError when finished)."""
        self.backend.act(self.id, "stop")

    def retry(self) -> None:
        """Retry a finished run from its failures: failed and stopped steps run again, succeeded ones are kept."""
        self.backend.act(self.id, "retry")

    def steps(self) -> dict[str, str]:
        """Return the state of each step (task instance) by name."""
        return {t["name"]: t["state"] for t in self.detail()["tasks"]}

    def step(self, name: str) -> dict[str, Any]:
        """Return one step: state, try number, attempts, inputs and outputs as stored."""
        return _task(self.detail(), name)

    def logs(self, step: str, try_number: int | None = None) -> str:
        """Return the log of a step's attempt (the latest by default) as text."""
        return self.backend.log_text(self.id, step, try_number)

    def parameters(self, step: str) -> dict[str, Any]:
        """Return a step's text outputs, decoded by the OP's declared types when the workflow is known."""
        outputs = self.step(step).get("outputs") or {}
        spec_of = self._signature(step)
        sliced = self._sliced(step)
        values: dict[str, Any] = {}
        for name, produced in outputs.items():
            if isinstance(produced, Mapping) and produced.get("type") == "text":
                spec = spec_of(name)
                text = str(produced.get("value", ""))
                if spec is not None and sliced:  # gathered (R15): the slices' texts, each decoded (null: none)
                    values[name] = [
                        None if v is None else decode_parameter(str(v), spec.type) for v in json.loads(text)
                    ]
                else:
                    values[name] = decode_parameter(text, spec.type) if spec is not None else text
        return values

    def _sliced(self, step: str) -> bool:
        """Return True when `step` ran as slices (its outputs are gathered lists, docs/rules.md R15)."""
        return any(str(t.get("name", "")).startswith(f"{step}[") for t in self.detail().get("tasks") or [])

    def download_artifact(self, step: str, name: str, dest: str | os.PathLike[str] = ".") -> Any:
        """Download a step's artifact under `dest`; return its path (or list of paths, by the OP's type)."""
        target = self.backend.fetch_artifact(self.id, step, name, Path(dest))
        spec = self._signature(step)(name)
        listed = (target / MANIFEST).is_file() and len(json.loads((target / MANIFEST).read_text())["items"]) != 1
        if self._sliced(step):  # gathered (R15): the slices' files, each slice's own artifact unwrapped, in order
            return [path for item in unwrap_artifact(str(target), "paths") for path in list_item(str(item))]
        return unwrap_artifact(str(target), spec.type if spec is not None else "paths" if listed else "path")

    def _signature(self, step: str) -> Callable[[str], Any]:
        found = None
        if self.workflow is not None:
            try:
                found = self.workflow.step(step)
            except KeyError:
                found = None
        return lambda name: found.output_spec(name) if found is not None else None

    def __repr__(self) -> str:
        return f"<RunHandle run {self.id} of pipeline {self.pipeline_id}>"


def submit(
    workflow: Workflow,
    parameters: Mapping[str, Any] | None = None,
    *,
    server: Server | None = None,
    local: bool | None = None,
    services: Any = None,
) -> RunHandle:
    """Save `workflow` and start a run of it (see the module docstring for where); return its handle."""
    from myapp.sdk.runtime import encode_parameter

    params = {
        k: v
        if isinstance(v, str)
        else encode_parameter(
            v, "json" if isinstance(v, (dict, list)) else {bool: "bool", int: "int", float: "float"}[type(v)]
        )
        for k, v in (parameters or {}).items()
    }
    backend: Backend
    if server is None and not local and services is None:
        server = Server.from_env()
    if server is not None and not local:
        backend = RestBackend(server)
    else:
        backend = LocalBackend(services)
    pipeline_id, run_id = backend.submit(workflow.to_yaml(), params)
    return RunHandle(backend, run_id, pipeline_id, workflow)
