"""Run the node simulator as a process (scripts/k8s-testenv up --node does): until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from pathlib import Path

from tests.k8ssim.simulator import NodeSimulator, SimConfig


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.k8ssim", description=__doc__)
    parser.add_argument("--kubeconfig", type=Path, required=True, help="an admin kubeconfig")
    parser.add_argument("--state", type=Path, required=True, help="the node's directory (logs, pod dirs, certs)")
    parser.add_argument("--node-name", default="sim-node")
    parser.add_argument(
        "--pvc-dir",
        action="append",
        default=[],
        metavar="CLAIM=DIR",
        help="serve a claim from a local directory (else its PV's hostPath is used)",
    )
    parser.add_argument("--log-max-size", type=int, default=10 * 1024 * 1024)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    config = SimConfig(
        node_name=args.node_name,
        log_max_size=args.log_max_size,
        pvc_dirs=dict(item.split("=", 1) for item in args.pvc_dir),
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    sim = NodeSimulator(args.kubeconfig, args.state, config).start()
    try:
        stop.wait()
    finally:
        sim.stop()


if __name__ == "__main__":
    main()
