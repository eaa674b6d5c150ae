"""LazyServices (myapp/queue/celery_app.py): the threads pool's threads share one set of services."""

from __future__ import annotations

import threading
import time
from typing import Any

from myapp.queue import celery_app


def test_threads_starting_at_once_build_one_set(monkeypatch: Any) -> None:
    built: list[object] = []

    def slow_build(_settings: Any) -> object:
        time.sleep(0.05)  # long enough for every thread to ask before the first build ends
        services = object()
        built.append(services)
        return services

    monkeypatch.setattr(celery_app, "build_services", slow_build)
    monkeypatch.setattr(celery_app, "use_celery", lambda services, app: None)
    lazy = celery_app.LazyServices(settings=None, app=None)  # type: ignore[arg-type]
    got: list[object] = []
    threads = [threading.Thread(target=lambda: got.append(lazy.get())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(built) == 1
    assert got == built * 8
    lazy.reset()
    assert lazy.get() is not built[0]
