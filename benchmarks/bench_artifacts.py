"""Artifact repository benchmark (issue 15 item 5): what storing and fetching a file output costs
on disk (file://, the default) and in S3 (moto's S3 server on loopback, as the tests use).

    python3 benchmarks/bench_artifacts.py                       # 1 MB file, 50 MB file, 1,000-file directory
    python3 benchmarks/bench_artifacts.py --repeat 5

Per case and repository: the median seconds of `put` (after an attempt) and `fetch` (before a
consumer), each over `--repeat` rounds. moto keeps objects in memory in this process, so the S3
figures are the client's work (tar, gzip, s3fs, HTTP on loopback), not a real network's.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from myapp.artifacts import open_repository  # noqa: E402
from myapp.core.output_paths import artifact_key  # noqa: E402
from myapp.core.ports import ArtifactRepository  # noqa: E402
from myapp.settings import Settings  # noqa: E402
from tests.s3server import running_s3_server  # noqa: E402


def make_cases(root: Path) -> dict[str, Path]:
    root.mkdir(parents=True)
    small, big, tree = root / "one-mb.bin", root / "fifty-mb.bin", root / "thousand-files"
    small.write_bytes(os.urandom(1 << 20))
    big.write_bytes(os.urandom(50 << 20))
    for i in range(1000):
        part = tree / f"d{i % 10}"
        part.mkdir(parents=True, exist_ok=True)
        (part / f"f{i}.txt").write_text(f"line {i}\n" * 20)
    return {"1 MB file": small, "50 MB file": big, "1,000-file directory": tree}


def median_seconds(work: Callable[[int], None], repeat: int) -> float:
    times = []
    for i in range(repeat):
        began = time.perf_counter()
        work(i)
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def measure(
    repo: ArtifactRepository, cases: dict[str, Path], scratch: Path, repeat: int
) -> dict[str, tuple[float, float]]:
    found = {}
    for n, (name, source) in enumerate(cases.items()):
        found[name] = measure_case(repo, n, source, scratch, repeat)
    return found


def measure_case(repo: ArtifactRepository, n: int, source: Path, scratch: Path, repeat: int) -> tuple[float, float]:
    locations: list[str] = []
    put = median_seconds(lambda i: locations.append(repo.put(source, artifact_key(n, "t", i + 1, "out"))), repeat)
    fetch = median_seconds(lambda i: repo.fetch(locations[i], scratch / f"{n}-{i}"), repeat)
    return put, fetch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, running_s3_server() as s3:
        root = Path(tmp)
        cases = make_cases(root / "cases")
        disk = open_repository(Settings(home=root / "home"))
        remote = open_repository(
            Settings(home=root / "home", artifact_repository=s3.url("bench"), artifact_s3_endpoint_url=s3.endpoint)
        )
        results = {
            "file://": measure(disk, cases, root / "disk", args.repeat),
            "s3:// (moto)": measure(remote, cases, root / "s3", args.repeat),
        }
    print(f"{'case':24} {'repository':14} {'put s':>8} {'fetch s':>8}")
    for repository, rows in results.items():
        for case, (put, fetch) in rows.items():
            print(f"{case:24} {repository:14} {put:8.3f} {fetch:8.3f}")


if __name__ == "__main__":
    main()
