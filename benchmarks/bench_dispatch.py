"""Dispatch benchmark: the CPU of sending N queued task instances' execute messages to Redis.

    python3 benchmarks/bench_dispatch.py [--broker redis://127.0.0.1:6379/11] [--n 10000] [--batch 500]

What a scheduler pass does after each batch's COMMIT (`myapp.queue.celery_app.celery_dispatch`, one
call per batch of launched runs): N messages in calls of `--batch` ids. Prints the CPU and wall time
of this process and the messages that reached the queue. The Redis database must be empty (a
database a worker polls would run the messages); the keys the run made are deleted at the end.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> None:
    import redis
    from celery import Celery

    from myapp.queue.celery_app import QUEUE, celery_dispatch

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/11")
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    client = redis.Redis.from_url(args.broker)
    if client.dbsize():
        sys.exit(f"{args.broker} is not empty: name an unused Redis database with --broker")
    app = Celery("bench-dispatch", broker=args.broker)
    dispatch = celery_dispatch(app)
    try:
        dispatch([1, 2])  # connect and declare: not timed
        ids = list(range(3, args.n + 3))
        cpu, wall = time.process_time(), time.perf_counter()
        for start in range(0, len(ids), args.batch):
            dispatch(ids[start : start + args.batch])
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        print(
            f"dispatch {args.n:,} in calls of {args.batch} | CPU {cpu * 1000:.0f} ms | wall {wall * 1000:.0f} ms | "
            f"{client.llen(QUEUE) - 2:,} queued | load {os.getloadavg()[0]:.1f}"
        )
    finally:
        for key in client.keys("*"):  # the database was empty: every key is this run's
            client.delete(key)


if __name__ == "__main__":
    main()
