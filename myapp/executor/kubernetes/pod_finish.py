"""Ending a Kubernetes attempt (myapp.k8s.tracked.Finisher): collect its outputs, archive its
aggregated log, and record the end through AttemptStore.finish, as the local executor does.
Also judges resource attempts against their success and failure conditions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from myapp.builtins.conditions import Requirement, holds
from myapp.core.errors import MyappError
from myapp.core.ports import ArtifactRepository, AttemptPort
from myapp.core.values import AttemptResult
from myapp.executor.kubernetes.pod_outputs import collect_pod_outputs, uploaded_pod_outputs
from myapp.k8s.config import KubeConfig
from myapp.k8s.logs import LogHub
from myapp.k8s.pods import Outcome, PodView
from myapp.k8s.tracked import TrackedAttempt


class PodFinisher:
    """Turns a decided Outcome into the attempt's recorded end."""

    def __init__(
        self,
        attempts: AttemptPort,
        hub: LogHub,
        cfg: KubeConfig,
        artifacts: ArtifactRepository,
        now: Callable[[], datetime],
    ) -> None:
        self.attempts, self.hub, self.cfg, self.artifacts, self.now = attempts, hub, cfg, artifacts, now

    def finish(self, attempt: TrackedAttempt, outcome: Outcome, pods: Sequence[PodView]) -> None:
        """Collect outputs (on success), archive the log, then record the end."""
        result = self._result(attempt, outcome)
        if not result.succeeded:
            self.hub.note(attempt.attempt_id, attempt.key, result.message)
        self.hub.close(attempt.attempt_id, attempt.key, pods)
        self.attempts.finish(attempt.attempt_id, result, self.now())

    def release(self, attempt: TrackedAttempt, pods: Sequence[PodView]) -> None:
        """The engine ended the attempt (stop, run timeout, lost worker): archive what was logged."""
        if self.hub.has_stream(attempt.attempt_id):
            self.hub.note(
                attempt.attempt_id, attempt.key, "attempt ended by myapp (stopped or timed out): its pods were deleted"
            )
            self.hub.close(attempt.attempt_id, attempt.key, pods, timeout=2.0)

    def judge_resource(self, attempt: TrackedAttempt, obj: Mapping[str, Any] | None) -> Outcome | None:
        """Return the outcome of a resource attempt from its object, or None while undecided."""
        ref = attempt.launch.get("resource") or {}
        what = f"{ref.get('kind')} {ref.get('name')}"
        if obj is None:
            return Outcome(False, None, f"{what} was deleted before it reached its success condition")
        failure, success = _requirements(attempt.launch, "failure"), _requirements(attempt.launch, "success")
        if failure and holds(failure, obj):
            return Outcome(False, None, f"{what} met its failure condition ({_text(failure)})")
        if not success or holds(success, obj):
            return Outcome(True, 0, "")
        return None

    def _result(self, attempt: TrackedAttempt, outcome: Outcome) -> AttemptResult:
        inputs = dict(attempt.launch.get("inputs") or {})
        if not outcome.succeeded:
            return AttemptResult(False, outcome.exit_code, outcome.message, inputs=inputs)
        try:
            if attempt.launch.get("transfer") == "pod":  # the pod uploaded its own files
                outputs = uploaded_pod_outputs(
                    attempt.task,
                    attempt.launch,
                    outcome.termination,
                    roots=self.cfg.output_roots,
                    artifacts=self.artifacts,
                    run_id=attempt.run_id,
                    try_number=attempt.try_number,
                )
                return AttemptResult(True, outcome.exit_code, "", outputs=outputs, inputs=inputs)
            outputs = collect_pod_outputs(
                attempt.task,
                attempt.launch,
                outcome.termination,
                workflow_space=self.cfg.workflow_space,
                mount=self.cfg.workflow_space_mount,
                shared=bool(self.cfg.workflow_space_pvc),
                roots=self.cfg.output_roots,
                artifacts=self.artifacts,
                run_id=attempt.run_id,
                try_number=attempt.try_number,
            )
        except (MyappError, OSError) as exc:
            return AttemptResult(False, outcome.exit_code, str(exc), inputs=inputs)
        return AttemptResult(True, outcome.exit_code, "", outputs=outputs, inputs=inputs)


def _requirements(launch: Mapping[str, Any], name: str) -> tuple[Requirement, ...]:
    return tuple(Requirement(str(p), str(op), str(v)) for p, op, v in launch.get(name) or [])


def _text(reqs: tuple[Requirement, ...]) -> str:
    return ", ".join(f"{r.path} {r.operator} {r.value}" for r in reqs)
