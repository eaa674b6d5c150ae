"""The web server's worker (myapp/web/server.py): what it does in each process before serving."""

from __future__ import annotations

import gc
import logging
from types import SimpleNamespace
from typing import Any

import pytest

from myapp.web import server


def test_a_worker_freezes_the_preloaded_app_out_of_the_cyclic_collector(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 13 B15: full collections during a 10,000-task save walked every object of the app."""
    monkeypatch.setattr(server.GunicornThreadWorker, "init_process", lambda self: None)  # no serving here
    monkeypatch.setattr(server, "load_settings", lambda: SimpleNamespace(web_client_timeout=7))
    worker: Any = object.__new__(server.ThreadWorker)
    worker.log = SimpleNamespace(error_log=logging.getLogger("test-web-server-worker"))
    gc.unfreeze()
    try:
        before = gc.get_freeze_count()
        server.ThreadWorker.init_process(worker)
        assert before == 0 and gc.get_freeze_count() > 10_000  # every object alive at start, imports included
        assert worker.client_timeout == 7
    finally:
        gc.unfreeze()
