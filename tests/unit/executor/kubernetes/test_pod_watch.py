"""The watcher process's readiness line (myapp/executor/kubernetes/pod_watch.py): "watching" only
once the pods are listed, so nothing that waits for it (an operator, the integration tests) acts
while a pod could still be created and deleted unseen."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

from myapp.executor.kubernetes.pod_watch import announce_watching
from myapp.k8s.config import kube_config
from myapp.settings import load_settings


def _watcher() -> Any:
    return SimpleNamespace(synced=threading.Event(), pods=[], pod_stream=SimpleNamespace(error=""))


def _announce(watcher: Any, stop: threading.Event) -> tuple[threading.Thread, list[str]]:
    said: list[str] = []
    thread = threading.Thread(target=announce_watching, args=(watcher, stop, said.append), daemon=True)
    thread.start()
    return thread, said


def test_watching_is_said_once_the_first_pod_list_is_applied_and_not_before() -> None:
    watcher, stop = _watcher(), threading.Event()
    thread, said = _announce(watcher, stop)
    thread.join(0.3)
    assert said == [], "announced before the pods were listed"
    watcher.pods = ["a", "b"]
    watcher.synced.set()
    thread.join(5)
    assert said == ["watching: 2 pod(s) of the group listed"]


def test_a_failing_first_list_is_announced_with_its_fallback() -> None:
    watcher, stop = _watcher(), threading.Event()
    thread, said = _announce(watcher, stop)
    watcher.pod_stream.error = "pods: cannot list pods: forbidden"
    thread.join(5)
    assert said == ["watching without a pod list (pods: cannot list pods: forbidden); pods are read one by one"]


def test_a_watcher_stopped_before_its_list_says_nothing() -> None:
    watcher, stop = _watcher(), threading.Event()
    thread, said = _announce(watcher, stop)
    stop.set()
    thread.join(5)
    assert not thread.is_alive() and said == []


def test_the_missing_pod_grace_is_a_setting() -> None:
    assert kube_config(load_settings({})).missing_grace == 60
    assert kube_config(load_settings({"MYAPP_K8S_MISSING_GRACE": "20"})).missing_grace == 20
