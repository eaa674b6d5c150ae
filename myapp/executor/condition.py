"""A task's condition (`when`, docs/rules.md R14) checked right after its attempt is claimed.

Both executors call `condition_result` before starting anything: a false condition ends the
attempt as skipped (nothing runs, no process, no pod), an error in it fails the attempt with the
message naming the task and the field (retries apply). Evaluated by the worker, never under the
run lock: rendering is bounded (core/sandbox.py) but not free. A debug run ignores conditions
(it runs the one task its user asked for).
"""

from __future__ import annotations

from dataclasses import replace

from myapp.core.conditions import is_condition_met
from myapp.core.errors import MyappError
from myapp.core.redact import Redactor
from myapp.core.render import RenderContext, render_global_params
from myapp.core.values import AttemptContext, AttemptResult


def condition_result(ctx: AttemptContext, cluster_name: str) -> AttemptResult | None:
    """Return how the attempt ends without running when its condition is false or broken, else None."""
    when = ctx.task.when
    if not when or ctx.debug_inputs is not None:
        return None
    rctx = RenderContext(
        creator=ctx.creator,
        runner=ctx.runner,
        pipeline_id=ctx.pipeline_id,
        pipeline_name=ctx.pipeline_name,
        run_id=ctx.run_id,
        task_name=ctx.task.name,
        cluster_name=cluster_name,
        execution_date=ctx.execution_date,
        params={},
    )
    try:
        rctx = replace(rctx, params=render_global_params(ctx.spec.parameters, ctx.params, rctx))
        met = is_condition_met(when, rctx, ctx.upstream_outputs)
    except MyappError as exc:  # a message people read: a secret parameter's value never shows in it
        values = {**ctx.params, **rctx.params}
        secrets = Redactor(values.get(p.name, "") for p in ctx.spec.parameters if p.secret)
        return AttemptResult(succeeded=False, message=secrets(str(exc)))
    if met:
        return None
    return AttemptResult(succeeded=True, skipped=True, message=f"skipped: its condition {when!r} is false")
