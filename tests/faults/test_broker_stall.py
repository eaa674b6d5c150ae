"""A worker whose consumer silently stops taking messages exits so that its supervisor restarts it.

The stall is the one kombu's Redis transport has shown after broker restarts (the worker stays
connected but never asks for a message again: celery #9054, kombu #2007): it is reproduced here by
a sitecustomize in the worker's PYTHONPATH that turns kombu's BRPOP into a no-op once a marker file
exists. The liveness probe (myapp/queue/liveness.py) then goes unanswered while the broker accepts
it: `myapp worker` must exit with status 1 and say why, and a worker started in its place (what a
supervisor does) must run the work that waited meanwhile, once.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import WorkerProcess, make_settings, worker_env
from tests.faults.runs import check_recovered, save_diamond, start_runs, wait_all_finished
from tests.integration.engine_helpers import detail, poll

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]
# Short, for the stall to be seen soon; not so short that a healthy consumer on a loaded machine,
# slow to take a probe, is taken for a stuck one (it exits and the healthy phase fails).
LIVENESS_TIMEOUT = 10

STALL = """
import os
marker = os.environ.get("MYAPP_TEST_STALL_MARKER")
if marker:
    import kombu.transport.redis as redis_transport
    real = redis_transport.Channel._brpop_start

    def _brpop_start(self, timeout=None):
        if os.path.exists(marker):
            return None   # connected, polling, but never asking for a message again
        return real(self, timeout)

    redis_transport.Channel._brpop_start = _brpop_start
"""


@pytest.fixture(scope="module")
def stall_services(module_home: Path, database_url: str, broker_url: str) -> Iterator[Any]:
    from myapp.cli.process import init_database
    from myapp.queue.celery_app import create_celery, use_celery
    from myapp.services import build_services

    settings = make_settings(
        module_home, database_url, broker_url=broker_url, redis_url=broker_url, broker_liveness_timeout=LIVENESS_TIMEOUT
    )
    services = build_services(settings)
    init_database(services, admin_user="admin", admin_password="admin-pass", admin_email="a@b.c", quiet=True)
    app, _ = create_celery(settings)
    use_celery(services, app)
    site = module_home / "stall-site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(STALL)
    env = worker_env(settings, broker_url)
    env["PYTHONPATH"] = f"{site}:{env['PYTHONPATH']}"
    env["MYAPP_TEST_STALL_MARKER"] = str(module_home / "stall-now")
    services.env = env
    yield services
    services.db.dispose()


def test_a_worker_that_stops_consuming_exits_1_and_its_replacement_runs_the_waiting_work(stall_services: Any) -> None:
    services, marker = stall_services, Path(stall_services.env["MYAPP_TEST_STALL_MARKER"])
    stuck = WorkerProcess(services.env, concurrency=2, beat=True)
    services.worker = stuck  # its log goes into a failure's report
    stuck.start()
    try:
        pipeline = save_diamond(services, "stall", lines=1, pause=0)
        before = start_runs(services, pipeline, 1)
        wait_all_finished(services, before, timeout=120)  # healthy, and several probes answered meanwhile
        marker.write_text("stall")
        waiting = start_runs(services, pipeline, 2)
        assert stuck.proc is not None
        code = poll(
            lambda: stuck.proc.poll() is not None and (stuck.proc.returncode,),
            "the stuck worker to exit",
            timeout=90,
            interval=0.2,
        )[0]
        log = stuck.log.read_text(errors="replace")
        assert code == 1, log[-3000:]
        assert "stopped taking messages from the broker" in log, log[-3000:]
        assert all(detail(services, r)["state"] == "running" for r in waiting), "the stalled worker ran the new runs"
    finally:
        stuck.stop()
    marker.unlink()
    replacement = WorkerProcess(services.env, concurrency=2, beat=True)  # what the supervisor starts
    services.worker = replacement
    replacement.start()
    try:
        wait_all_finished(services, waiting, timeout=120)
        check_recovered(services, before + waiting, {}, {})
        assert replacement.proc is not None and replacement.proc.poll() is None
    finally:
        replacement.stop()
