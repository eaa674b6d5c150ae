"""The load workload (issue 7 item 4): a 10-task pipeline, many concurrent runs of it, and the checks
that nothing was lost. Shared by tests/load (50 runs) and benchmarks/bench_load.py (1,000 runs).

The pipeline is a chain with a fan-out and a fan-in, each task a tiny bash script that prints one
line and passes a text output on:

    extract -> clean -> part1..part6 -> join -> publish

Every run gets its own `tag` parameter, so each task's output, its log line and the final joined
value can be predicted and compared exactly.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from myapp.core.pipeline_spec import parse_pipeline
from myapp.core.states import RUN_TERMINAL, Trigger
from myapp.core.values import NewRun
from myapp.db.tables import Run, TaskAttempt, TaskInstance
from myapp.logs.attempt_logs import LogKey
from myapp.yaml_io import load_yaml

PARTS = 6
TASKS = ["extract", "clean", *(f"part{i}" for i in range(1, PARTS + 1)), "join", "publish"]


def pipeline_yaml(name: str = "load-10") -> str:
    """Return the 10-task pipeline: chain, fan-out of six, fan-in, final step."""
    output = "outputs: [{name: o, path: out.txt, type: text}]"
    joined = " ".join(f"$a{i}" for i in range(1, PARTS + 1))
    tasks = [
        ("extract", "tag: {from: params.tag}", 'echo "extract $tag"; echo "$tag" > out.txt', output),
        ("clean", "v: {from: extract.o}", 'echo "clean $v"; echo "$v.c" > out.txt', output),
        *(
            (f"part{i}", "v: {from: clean.o}", f'echo "part{i} $v"; echo "$v.p{i}" > out.txt', output)
            for i in range(1, PARTS + 1)
        ),
        (
            "join",
            ", ".join(f"a{i}: {{from: part{i}.o}}" for i in range(1, PARTS + 1)),
            f'echo "join {joined}"; echo "{joined}" > out.txt',
            output,
        ),
        ("publish", "v: {from: join.o}", 'echo "publish $v"', ""),
    ]
    lines = [f"name: {name}", "parameters:", "  - {name: tag, default: none}", "tasks:"]
    for task, inputs, script, outputs in tasks:
        lines += [
            f"  - name: {task}",
            "    template: shell",
            f"    args: {{script: '{script}'}}",
            f"    inputs: {{{inputs}}}",
        ] + ([f"    {outputs}"] if outputs else [])
    return "\n".join(lines) + "\n"


def expected_outputs(tag: str) -> dict[str, str | None]:
    """Return each task's text output for a run tagged `tag` (None: the task has no output)."""
    clean = f"{tag}.c"
    parts = {f"part{i}": f"{clean}.p{i}" for i in range(1, PARTS + 1)}
    return {"extract": tag, "clean": clean, **parts, "join": " ".join(parts.values()), "publish": None}


def expected_log_line(task: str, tag: str) -> str:
    """Return the line task `task` prints in a run tagged `tag`."""
    outs = expected_outputs(tag)
    received = {"extract": tag, "clean": outs["extract"], "join": outs["join"], "publish": outs["join"]}
    return f"{task} {received.get(task, outs['clean'])}"


def save_pipeline(services: Any, name: str = "load-10") -> int:
    """Save the load pipeline; return its id."""
    spec = parse_pipeline(load_yaml(pipeline_yaml(name)))
    return int(services.pipelines.save(spec, services.clock.now()).pipeline_id)


def launch(services: Any, pipeline_id: int, count: int, creators: int = 1, prefix: str = "r") -> float:
    """Create `count` manual runs (tags prefix0..) through RunStore.create_run; return the seconds taken.

    `creators` threads create them concurrently, as that many API clients would.
    """

    def create(indexes: Iterable[int]) -> None:
        for i in indexes:
            now = services.clock.now()
            services.runs.create_run(
                NewRun(
                    pipeline_id=pipeline_id,
                    trigger=Trigger.MANUAL,
                    execution_date=now,
                    params={"tag": f"{prefix}{i}"},
                    runner="load",
                ),
                now,
            )

    began = time.perf_counter()
    threads = [threading.Thread(target=create, args=(range(k, count, creators),)) for k in range(creators)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - began


def wait_all(services: Any, pipeline_id: int, count: int, timeout: float, poll: float = 0.5) -> bool:
    """Wait until `count` runs of the pipeline are terminal (one cheap COUNT per poll); False on timeout."""
    terminal = [state.value for state in RUN_TERMINAL]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with services.db.read() as s:
            done = s.scalar(
                select(func.count()).select_from(Run).where(Run.pipeline_id == pipeline_id, Run.state.in_(terminal))
            )
        if done is not None and done >= count:
            return True
        time.sleep(poll)
    return False


@dataclass
class LoadReport:
    """What the checks found: counts, timings from the database's own timestamps, and every problem."""

    runs: Counter[str] = field(default_factory=Counter)
    task_instances: Counter[str] = field(default_factory=Counter)
    attempts_per_ti: Counter[int] = field(default_factory=Counter)
    logs_checked: int = 0
    outputs_checked: int = 0
    span_seconds: float = 0.0
    run_seconds: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def problem(self, text: str) -> None:
        if len(self.problems) < 50:
            self.problems.append(text)
        elif len(self.problems) == 50:
            self.problems.append("... (more problems left out)")

    @property
    def tasks_per_second(self) -> float:
        return self.task_instances["succeeded"] / self.span_seconds if self.span_seconds else 0.0

    def percentile(self, q: float) -> float:
        ordered = sorted(self.run_seconds)
        return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))] if ordered else 0.0

    def lines(self) -> list[str]:
        """Return the report as printable lines."""
        median = statistics.median(self.run_seconds) if self.run_seconds else 0.0
        return [
            f"runs by state: {dict(self.runs)}",
            f"task instances by state: {dict(self.task_instances)}",
            f"attempts per task instance: {dict(self.attempts_per_ti)}",
            f"logs archived and checked: {self.logs_checked}; outputs checked: {self.outputs_checked}",
            f"span first run created -> last run ended: {self.span_seconds:.1f} s, {self.tasks_per_second:.1f} tasks/s",
            f"run duration (created -> ended): p50 {median:.1f} s, p95 {self.percentile(0.95):.1f} s, "
            f"max {max(self.run_seconds, default=0.0):.1f} s",
        ]


def check(services: Any, pipeline_id: int, count: int) -> LoadReport:
    """Check that `count` runs of the pipeline succeeded with nothing lost, duplicated or altered."""
    report = LoadReport()
    with services.db.read() as s:
        runs = s.execute(
            select(Run.id, Run.state, Run.params, Run.created_at, Run.ended_at, Run.message).where(
                Run.pipeline_id == pipeline_id
            )
        ).all()
        tis = s.execute(
            select(
                TaskInstance.id,
                TaskInstance.run_id,
                TaskInstance.task_name,
                TaskInstance.state,
                TaskInstance.try_number,
                TaskInstance.outputs,
            )
            .join(Run, Run.id == TaskInstance.run_id)
            .where(Run.pipeline_id == pipeline_id)
        ).all()
        attempts = s.execute(
            select(TaskAttempt.task_instance_id, TaskAttempt.try_number, TaskAttempt.state)
            .join(TaskInstance, TaskInstance.id == TaskAttempt.task_instance_id)
            .join(Run, Run.id == TaskInstance.run_id)
            .where(Run.pipeline_id == pipeline_id)
        ).all()
    _check_runs(report, runs, count)
    tags = {run_id: str(params.get("tag")) for run_id, _, params, *_ in runs}
    per_ti: dict[int, list[tuple[int, str]]] = {}
    for ti_id, try_number, state in attempts:
        per_ti.setdefault(ti_id, []).append((try_number, state))
    for ti_id, run_id, name, state, try_number, outputs in tis:
        report.task_instances[state] += 1
        tries = per_ti.get(ti_id, [])
        report.attempts_per_ti[len(tries)] += 1
        if state != "succeeded" or try_number != 1 or tries != [(1, "succeeded")]:
            report.problem(f"run {run_id} task {name}: {state}, try_number {try_number}, attempts {tries}")
        _check_output(report, run_id, name, outputs, tags[run_id])
        _check_log(report, services, run_id, name, tags[run_id])
    if report.task_instances["succeeded"] != count * len(TASKS):
        report.problem(f"{report.task_instances['succeeded']} task instances succeeded, expected {count * len(TASKS)}")
    return report


def _check_runs(report: LoadReport, runs: list[Any], count: int) -> None:
    for run_id, state, _, created_at, ended_at, message in runs:
        report.runs[state] += 1
        if state != "succeeded":
            report.problem(f"run {run_id} ended {state}: {message}")
        elif ended_at is not None:
            report.run_seconds.append((ended_at - created_at).total_seconds())
    if len(runs) != count or report.runs["succeeded"] != count:
        report.problem(f"{report.runs['succeeded']} of {len(runs)} runs succeeded, expected {count}")
    ends = [row[4] for row in runs if row[4] is not None]
    if ends:
        report.span_seconds = (max(ends) - min(row[3] for row in runs)).total_seconds()


def _check_output(report: LoadReport, run_id: int, task: str, outputs: dict[str, Any], tag: str) -> None:
    want = expected_outputs(tag)[task]
    got = (outputs or {}).get("o")
    if want is None:
        if got is not None:
            report.problem(f"run {run_id} task {task}: unexpected output {got!r}")
        return
    if got != {"type": "text", "value": want}:
        report.problem(f"run {run_id} task {task}: output {got!r}, expected {want!r}")
        return
    report.outputs_checked += 1


def _check_log(report: LoadReport, services: Any, run_id: int, task: str, tag: str) -> None:
    lines, archived = services.logs.lines(LogKey(run_id, task, 1))
    want = expected_log_line(task, tag)
    if not archived:
        report.problem(f"run {run_id} task {task}: log not archived")
    elif want not in (line.rstrip("\n") for line in lines):
        report.problem(f"run {run_id} task {task}: log lacks {want!r}: {lines[-5:]!r}")
    else:
        report.logs_checked += 1
