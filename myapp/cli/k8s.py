"""`myapp k8s-watcher`: the watcher of one worker group of the Kubernetes executor.

Run one or more per group next to the Celery workers (which only create pods): they elect a leader
through a Lease (myapp/k8s/lease.py); the others stand by and take over when it stops renewing.
Stops cleanly on SIGTERM or Ctrl-C after finishing the attempts it was ending (and hands the Lease over).
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

import click

from myapp.cli import handle_errors


@click.command("k8s-watcher")
@click.option("--group", default=None, help="Worker group (default: the k8s_group setting).")
@handle_errors
def k8s_watcher(group: str | None) -> None:
    """Watch the pods of a worker group and feed their outcomes, logs and events into myapp."""
    import dataclasses

    from myapp.executor.kubernetes.pod_watch import run_elected
    from myapp.queue.celery_app import create_celery, use_celery
    from myapp.services import build_services
    from myapp.settings import load_settings

    settings = load_settings()
    if group:
        settings = dataclasses.replace(settings, k8s_group=group)
    app, _ = create_celery(settings)
    services = build_services(settings)
    use_celery(services, app)  # the watcher ends attempts, so runs: dispatch and scheduler wake-ups
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()

    def on_signal(*_: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    # "watching" comes later, from run_elected: once this process leads and has listed its pods.
    click.echo(f"k8s-watcher: group {settings.k8s_group!r}, namespace {settings.k8s_namespace!r}; starting")
    run_elected(services, stop, on_state=lambda text: click.echo(f"k8s-watcher: {text}"))
    click.echo("k8s-watcher: stopped")


def register(main: click.Group) -> None:
    main.add_command(k8s_watcher)
