"""The watcher process of one worker group (`myapp k8s-watcher`): wire the database, the cluster,
the logs and the Celery dispatch once, then run myapp.k8s.watcher.Watcher until stopped.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import socket
import threading
import uuid
from collections.abc import Callable
from typing import Any

from myapp.core.redact import Redactor
from myapp.executor.kubernetes.launch import group_worker
from myapp.executor.kubernetes.pod_attempts import PodAttempts
from myapp.executor.kubernetes.pod_finish import PodFinisher
from myapp.executor.kubernetes.watcher_health import publish
from myapp.executor.ports import WatcherPorts
from myapp.k8s.client import make_api_client
from myapp.k8s.config import KubeConfig, kube_config
from myapp.k8s.launcher import Launcher, LaunchError
from myapp.k8s.lease import LeaderElector
from myapp.k8s.logs import LogHub
from myapp.k8s.watcher import Watcher
from myapp.logs.attempt_logs import AttemptLog, LogKey, LogWriter


def build_watcher(services: WatcherPorts, cfg: KubeConfig | None = None, *, finish_workers: int = 8) -> Watcher:
    """Return the watcher of `cfg.group`, built on `services` (whose dispatch sends to Celery)."""
    settings = services.settings
    cfg = cfg or kube_config(settings)
    api = make_api_client(cfg, pool_size=min(cfg.log_streams, 4000) + 32)
    launcher = Launcher(api, cfg.namespace, discovery_cache=settings.home / "k8s-discovery.json")
    launcher.log_read_timeout = settings.k8s_log_read_timeout or None

    def open_sink(key: LogKey) -> LogWriter:
        log = AttemptLog(key, settings.logs_dir, services.redis)
        # The run token a pod prints is masked here; its secret parameters, named by the pod itself
        # (myapp/secret-env), are masked by the LogHub as soon as it sees the pod.
        log.redact_with(Redactor([services.runs.run_token(key.run_id)]))
        return log

    hub = LogHub(launcher, open_sink, max_streams=cfg.log_streams)
    finisher = PodFinisher(services.attempts, hub, cfg, services.artifacts, services.clock.now)
    book = PodAttempts(services.db, group_worker(cfg.group))
    redis = services.redis
    report = (lambda state: publish(redis, state)) if redis is not None else None
    return Watcher(
        cfg,
        launcher,
        book,
        finisher,
        hub,
        services.clock.now,
        workers=finish_workers,
        missing_grace=cfg.missing_grace,
        kill_grace=int(settings.kill_grace),
        report=report,
    )


def run_watcher(services: WatcherPorts, stop: threading.Event, **options: Any) -> Watcher:
    """Run the group's watcher in this thread until `stop` is set; return it (for its counters)."""
    watcher = build_watcher(services, **options)
    watcher.run(stop)
    return watcher


def lease_name(cfg: KubeConfig) -> str:
    """Return the Lease the watchers of a group (in one installation) elect their leader with."""
    slug = re.sub(r"[^a-z0-9-]+", "-", f"{cfg.group}-{cfg.installation}".lower()).strip("-")
    digest = hashlib.sha256(f"{cfg.installation}/{cfg.group}".encode()).hexdigest()[:8]
    return f"{cfg.pod_prefix}-watcher-{slug}"[:240].rstrip("-") + f"-{digest}"


def run_elected(
    services: WatcherPorts,
    stop: threading.Event,
    *,
    identity: str = "",
    on_state: Callable[[str], None] = lambda _: None,
) -> None:
    """Stand by until this process holds the group's Lease, then watch until `stop` or the Lease is lost."""
    cfg = kube_config(services.settings)
    launcher = Launcher(make_api_client(cfg, pool_size=4), cfg.namespace)
    me = identity or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    elector = LeaderElector(launcher, lease_name(cfg), me, duration=float(services.settings.k8s_lease_duration))
    waiting_for = None
    while not stop.is_set():
        try:
            leading = elector.try_acquire_or_renew()
        except LaunchError as exc:  # forbidden (RBAC), or the API is down: say so, keep trying
            on_state(f"cannot use lease {elector.name}: {exc}")
            stop.wait(elector.renew_every)
            continue
        if not leading:
            if waiting_for != elector.holder:
                waiting_for = elector.holder
                on_state(f"standing by: {elector.holder!r} leads (lease {elector.name})")
            stop.wait(min(elector.renew_every, 2.0))
            continue
        waiting_for = None
        on_state(f"leading as {me!r} (lease {elector.name})")
        _lead(services, cfg, elector, stop, on_state)
    elector_release(elector)


def _lead(
    services: WatcherPorts,
    cfg: KubeConfig,
    elector: LeaderElector,
    stop: threading.Event,
    on_state: Callable[[str], None],
) -> None:
    lost = threading.Event()
    either = threading.Event()
    renewer = threading.Thread(target=elector.lead, args=(either, lost), name="lease", daemon=True)

    def relay() -> None:
        while not either.is_set():
            if stop.wait(0.2) or lost.is_set():
                either.set()

    threading.Thread(target=relay, name="lease-relay", daemon=True).start()
    renewer.start()
    watcher = build_watcher(services, cfg)
    threading.Thread(target=announce_watching, args=(watcher, either, on_state), name="announce", daemon=True).start()
    watcher.run(either)
    either.set()
    renewer.join(5)


def announce_watching(watcher: Watcher, stop: threading.Event, on_state: Callable[[str], None]) -> None:
    """Say "watching" once the watcher sees its pods: their first list is applied, or it failed and
    the watcher reads them one by one. Not before: until then a pod created and deleted meanwhile is
    invisible to it, and whoever waits for the line (an operator, a test) would act too early."""
    while not stop.is_set():
        if watcher.synced.wait(0.1):
            on_state(f"watching: {len(watcher.pods)} pod(s) of the group listed")
            return
        if watcher.pod_stream.error:
            on_state(f"watching without a pod list ({watcher.pod_stream.error}); pods are read one by one")
            return


def elector_release(elector: LeaderElector) -> None:
    """Hand the Lease over on a clean stop (a follower need not wait for it to expire)."""
    try:
        elector.release()
    except LaunchError as exc:
        logging.getLogger(__name__).warning("releasing lease %s: %s", elector.name, exc)
