"""The watcher process of one worker group (`myapp k8s-watcher`): wire the database, the cluster,
the logs and the Celery dispatch once, then run myapp.k8s.watcher.Watcher until stopped.
"""

from __future__ import annotations

import threading
from typing import Any

from myapp.core.redact import Redactor
from myapp.executor.kubernetes import group_worker
from myapp.executor.pod_attempts import PodAttempts
from myapp.executor.pod_finish import PodFinisher
from myapp.k8s.client import make_api_client
from myapp.k8s.config import KubeConfig, kube_config
from myapp.k8s.launcher import Launcher
from myapp.k8s.logs import LogHub
from myapp.k8s.watcher import Watcher
from myapp.logs import AttemptLog, LogKey, LogWriter
from myapp.services import Services


def build_watcher(services: Services, cfg: KubeConfig | None = None, *, finish_workers: int = 8) -> Watcher:
    """Return the watcher of `cfg.group`, built on `services` (whose dispatch sends to Celery)."""
    settings = services.settings
    cfg = cfg or kube_config(settings)
    api = make_api_client(cfg, pool_size=min(cfg.log_streams, 4000) + 32)
    launcher = Launcher(api, cfg.namespace, discovery_cache=settings.home / "k8s-discovery.json")

    def open_sink(key: LogKey) -> LogWriter:
        log = AttemptLog(key, settings.logs_dir, services.redis)
        # The run token a pod prints is masked here; its secret parameters, named by the pod itself
        # (myapp/secret-env), are masked by the LogHub as soon as it sees the pod.
        log.redact_with(Redactor([services.runs.run_token(key.run_id)]))
        return log

    hub = LogHub(launcher, open_sink, max_streams=cfg.log_streams)
    finisher = PodFinisher(services.attempts, hub, cfg, settings.artifacts_dir, services.clock.now)
    book = PodAttempts(services.db, group_worker(cfg.group))
    return Watcher(cfg, launcher, book, finisher, hub, services.clock.now, workers=finish_workers,
                   kill_grace=int(settings.kill_grace))


def run_watcher(services: Services, stop: threading.Event, **options: Any) -> Watcher:
    """Run the group's watcher in this thread until `stop` is set; return it (for its counters)."""
    watcher = build_watcher(services, **options)
    watcher.run(stop)
    return watcher
