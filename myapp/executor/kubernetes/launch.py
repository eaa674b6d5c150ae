"""The `kubernetes` executor (docs/rules.md P5): a Celery task claims an attempt, creates its pods and
returns at once. The watcher of the worker group (`myapp k8s-watcher`) follows the pods and ends
the attempt, so a thousand running pods hold no worker slot.

Order matters for crash safety: the claim commits first, then the launch record (pod names,
kind, outputs), then the objects are created. Names derive from ids, so a create that finds the
object already there is a success; a resource with a user-chosen name counts only if it carries
this attempt's label.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from myapp.core.errors import MyappError
from myapp.core.ports import TemplateCatalog
from myapp.core.sandbox import Budget, render_budget
from myapp.core.values import AttemptContext, AttemptResult
from myapp.db.attempt_store import WATCHER_PREFIX
from myapp.executor.condition import condition_result
from myapp.executor.kubernetes.pod_plan import Launch, prepare_launch
from myapp.executor.ports import ExecutorPorts
from myapp.k8s.config import KubeConfig, kube_config
from myapp.k8s.launcher import Launcher, LaunchError
from myapp.k8s.manifest import LABEL_ATTEMPT, secret_manifest
from myapp.k8s.retry import is_retriable, retry_delay
from myapp.logs.attempt_logs import AttemptLog, LogKey, Stream

WORKER_PREFIX = WATCHER_PREFIX


@dataclass(frozen=True)
class Failure:
    """An attempt that failed before its pods ran; `created_any`: the watcher may hold its log."""

    result: AttemptResult
    created_any: bool


def group_worker(group: str) -> str:
    """Return the TaskAttempt.worker of attempts owned by a worker group's watcher."""
    return f"{WORKER_PREFIX}{group}"


@dataclass
class KubernetesExecutor:
    """Launches attempts as pods (or a distributed set, or a resource)."""

    cfg: KubeConfig
    catalog: TemplateCatalog
    launcher: Launcher
    sleep: Callable[[float], None] = field(default=time.sleep)

    def launch(self, ctx: AttemptContext, services: ExecutorPorts) -> Failure | None:
        """Create the attempt's objects; return a Failure only when the attempt already failed."""
        try:
            with render_budget(Budget(services.settings.render_timeout)):  # bounded like the local executor's
                launch = prepare_launch(ctx, self.cfg, self.catalog, services.artifacts)
        except (MyappError, OSError) as exc:
            return Failure(AttemptResult(succeeded=False, message=str(exc)), created_any=False)
        self._record(ctx, services, launch)
        return self._create(ctx, launch, services)

    def _record(self, ctx: AttemptContext, services: ExecutorPorts, launch: Launch, **waiting: str) -> None:
        services.attempts.record_process(
            ctx.attempt_id,
            pod_names=launch.pod_names,
            container={"executor": "kubernetes", "namespace": self.cfg.namespace, "launch": launch.record, **waiting},
        )

    def _create(self, ctx: AttemptContext, launch: Launch, services: ExecutorPorts) -> Failure | None:
        created: list[dict[str, Any]] = []
        try:
            if launch.secret is not None:  # before the pods (they read it), owned by them once they exist
                secret = secret_manifest(launch.secret, ())
                self._create_one(ctx, launch, secret, services)
                created.append(secret)
            for manifest in launch.manifests:
                if (
                    self._create_one(ctx, launch, manifest, services) == "exists"
                    and launch.record["kind"] == "resource"
                ):
                    self._check_owner(manifest, ctx.attempt_id)
                created.append(manifest)
            if launch.secret is not None:
                self._own_secret(launch, created)
        except LaunchError as exc:
            for manifest in reversed(created):  # a half-created distributed attempt must not linger
                meta = manifest["metadata"]
                self.launcher.delete(manifest["kind"], meta["name"], api_version=manifest["apiVersion"])
            result = AttemptResult(succeeded=False, message=str(exc), inputs=launch.record.get("inputs", {}))
            return Failure(result, created_any=bool(created))
        return None

    def _own_secret(self, launch: Launch, created: list[dict[str, Any]]) -> None:
        # The pending-owner pattern: the Secret exists before its pods (no container waits for it),
        # and gets them as owners now, so the garbage collector removes it with them. Until then (a
        # crash in between) it is removed with the attempt's other objects.
        assert launch.secret is not None
        owners = [
            (str(m["metadata"]["name"]), self.launcher.uid_of_pod(str(m["metadata"]["name"])))
            for m in created
            if m["kind"] == "Pod"
        ]
        self.launcher.set_owners("Secret", launch.secret.secret_name, owners)

    def _create_one(
        self, ctx: AttemptContext, launch: Launch, manifest: dict[str, Any], services: ExecutorPorts
    ) -> str:
        """Create one object, waiting out throttling, overload and quota (myapp/k8s/retry.py) within the limit."""
        give_up = services.clock.now() + timedelta(seconds=self.cfg.create_retry_timeout)
        failures = 0
        while True:
            try:
                result = self.launcher.create(manifest)
            except LaunchError as exc:
                failures += 1
                delay = retry_delay(failures, exc.retry_after)
                if (
                    not is_retriable(exc.status, exc.reason, str(exc))
                    or services.clock.now() + timedelta(seconds=delay) > give_up
                ):
                    if failures > 1:
                        raise LaunchError(f"{exc} (gave up after {failures} tries)", exc.status) from None
                    raise
                # Shown on the run page (TaskAttempt.container.waiting); the watcher holds its
                # "pod not found" rule until `creating_until`.
                self._record(
                    ctx,
                    services,
                    launch,
                    waiting=f"{exc}; trying again in {delay:g} s (try {failures + 1})",
                    creating_until=give_up.isoformat(),
                )
                self.sleep(delay)
                continue
            if failures:
                self._record(ctx, services, launch)
            return result

    def _check_owner(self, manifest: dict[str, Any], attempt_id: int) -> None:
        meta = manifest["metadata"]
        found = (
            self.launcher.get_object(
                manifest["apiVersion"], manifest["kind"], meta["name"], meta.get("namespace") or None
            )
            or {}
        )
        owner = ((found.get("metadata") or {}).get("labels") or {}).get(LABEL_ATTEMPT)
        if owner != str(attempt_id):
            raise LaunchError(
                f"{manifest['kind']} {meta['name']} already exists and was not created by this "
                f"attempt (delete it or name the object after the run, e.g. with {{{{ run_id }}}})"
            )


def kubernetes_executor(services: ExecutorPorts) -> KubernetesExecutor:
    """Build the executor from settings (one API client per process)."""
    from myapp.k8s.client import make_api_client

    cfg = kube_config(services.settings)
    launcher = Launcher(
        make_api_client(cfg, pool_size=8), cfg.namespace, discovery_cache=services.settings.home / "k8s-discovery.json"
    )
    return KubernetesExecutor(cfg, services.templates, launcher)


def launch_task_instance(ti_id: int, services: ExecutorPorts, executor: KubernetesExecutor) -> bool:
    """Claim task instance `ti_id` if it is still queued and launch its attempt; return True if claimed."""
    clock, attempts = services.clock, services.attempts
    ctx = attempts.claim(ti_id, group_worker(executor.cfg.group), clock.now())
    if ctx is None:
        return False
    early = condition_result(ctx, executor.cfg.cluster_name)  # R14: a false `when` creates no pod
    if early is not None:
        attempts.finish(ctx.attempt_id, early, clock.now())
        return True
    try:
        failure = executor.launch(ctx, services)
    except Exception as exc:  # noqa: BLE001  an executor bug must still end the attempt
        traceback.print_exc()
        failure = Failure(AttemptResult(succeeded=False, message=f"internal error: {exc}"), created_any=True)
    if failure is not None:
        if not failure.created_any:  # otherwise the watcher writes (and archives) this attempt's log
            log = AttemptLog(
                LogKey(ctx.run_id, ctx.task.name, ctx.try_number), services.settings.logs_dir, services.redis
            )
            log.write(failure.result.message, Stream.SYS)
            log.close()
        attempts.finish(ctx.attempt_id, failure.result, clock.now())
    return True


def launch_with_own_client(ti_id: int, services: ExecutorPorts) -> bool:
    """Launch `ti_id` with a client built for this call and closed after (the Celery task's entry)."""
    executor = kubernetes_executor(services)
    try:
        return launch_task_instance(ti_id, services, executor)
    finally:
        executor.launcher.api.close()  # type: ignore[no-untyped-call]
