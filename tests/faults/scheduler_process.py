"""A scheduler process for test_postgres_restart.py: passes one minute apart in one long-lived process,
as a worker runs Celery beat's make_timerun_config. A pass that fails is reported and the next one
runs; the process lives on (its pooled connections are checked before use, so it reconnects).

    python -m tests.faults.scheduler_process FIRST_INSTANT PASSES PAUSE   (settings from MYAPP_* variables)

PAUSE seconds separate the passes (beat's schedule_interval, shortened).

Prints one JSON object per line: {"event": "start", "now"} before a pass and {"event": "pass",
"now", "ok", "seconds", "created", "launched", "error"} after it.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import timedelta

from myapp.cli.schedule import parse_instant
from myapp.scheduling.scheduler import run_pass
from myapp.services import build_services
from myapp.settings import load_settings


def main(argv: list[str]) -> None:
    first, passes, pause = parse_instant(argv[0]), int(argv[1]), float(argv[2])
    services = build_services(load_settings())
    for i in range(passes):
        now = first + timedelta(minutes=i)
        print(json.dumps({"event": "start", "now": now.isoformat()}), flush=True)
        began = time.monotonic()
        line: dict[str, object] = {"event": "pass", "now": now.isoformat()}
        try:
            report = run_pass(services, now)
        except Exception as exc:  # noqa: BLE001  as Celery does with a failed task: log it, run the next one
            line.update(ok=False, error=str(exc).splitlines()[0])
        else:
            line.update(ok=True, created=report.created, launched=len(report.launched), errors=report.errors)
        line["seconds"] = round(time.monotonic() - began, 3)
        print(json.dumps(line), flush=True)
        time.sleep(pause)


if __name__ == "__main__":
    main(sys.argv[1:])
