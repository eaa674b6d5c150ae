"""Launch templates: the rows a cron run of a version starts with, kept in the database (issue 14 item 4).

A cron run copies everything from its version and pipeline except its execution date: no parameter
value is given (so nothing is sealed), no debug task, and its start queues the tasks without
upstream tasks. `template_rows` works those rows out once per version, from the same `draft_run`
and `started_rows` the drafting path uses, and `write_templates` stores them (table
`launch_templates`): when the version is saved (PipelineStore.save, up to SAVE_UP_TO_TASKS tasks),
or by the first pass that launches a version without one (saved before migration 0010, or larger:
`fill_from_drafts`).

`create_from_templates` then creates a whole batch of cron runs in one statement that reads the
templates and the claimed pipelines on the server (`INSERT INTO runs ... SELECT`, then, in the same
statement, the task instances and the launched schedule records from the runs it inserted), so a
pass parses no version and builds no row in Python. A version
without a template (one saved before migration 0010 and not launched since, or one whose cron runs
the template cannot express: a required parameter without a default, a start that does more than
queue tasks) is left to the drafting path (RunStore.draft_many_in / create_drafts_in). PostgreSQL
only (one array per column); the other databases always draft. Holds no business rule; must not
import Celery, Flask or kubernetes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any, NamedTuple

from sqlalchemy.orm import Session

from myapp.core.dag import Dag
from myapp.core.errors import MyappError
from myapp.core.model import PipelineSpec
from myapp.core.states import RecordStatus, RunState, TaskState, Trigger
from myapp.core.values import NewRun
from myapp.db.bulk import insert_rows
from myapp.db.run_drafts import PipelineRow, RunDraft, draft_run, started_rows
from myapp.db.schedule_tables import LaunchTemplate

_TEMPLATES = LaunchTemplate.__table__
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)  # any instant: no template column depends on it


class Launch(NamedTuple):
    """A cron run to create: its pipeline (claimed and locked by the caller), instant and its text (R2),
    and whether its schedule record is new (inserted launched with the run; else it exists, waiting)."""

    pipeline_id: int
    instant: datetime
    text: str
    new_record: bool


def template_rows(version_id: int, spec: PipelineSpec, dag: Dag) -> list[dict[str, Any]] | None:
    """Return the template rows of a version, or None when its cron runs cannot be made from one."""
    cron = NewRun(pipeline_id=0, trigger=Trigger.CRON, execution_date=_EPOCH, params={}, user_id=None, runner="")
    try:
        draft = draft_run(cron, PipelineRow(0, "", 0, version_id, "UTC"), version_id, spec, dag, _EPOCH)
    except MyappError:  # e.g. a required parameter without default: every launch is refused, by the drafting path
        return None
    return draft_template(version_id, draft)


def draft_template(version_id: int, draft: RunDraft) -> list[dict[str, Any]] | None:
    """Return the template rows equal to a cron run's draft, or None when a template cannot express it."""
    run = draft.run
    if run["trigger"] != Trigger.CRON.value or run["params"] or run["debug_task"] or run["copied_from_id"]:
        return None
    started = started_rows(draft, _EPOCH)
    if started is None:  # its start does more than queue tasks (a sliced task ready at once, R15)
        return None
    fields, tasks = started
    timeout = int(fields["timeout"] or 0)
    return [
        {
            "version_id": version_id,
            "position": position,
            "task_name": task["task_name"],
            "max_tries": task["max_tries"],
            "upstream_waiting": task["upstream_waiting"],
            "queued": task["state"] == TaskState.QUEUED.value,
            "run_timeout": timeout,
        }
        for position, task in enumerate(tasks)
    ]


# A version of more tasks gets its template from the first pass that launches it, not from its save:
# writing a 10,000-task version's template took 0.2-0.4 s, in the web request that saves it.
SAVE_UP_TO_TASKS = 1000


def save_template(s: Session, version_id: int, spec: PipelineSpec) -> None:
    """Store the template of a version being saved (of at most SAVE_UP_TO_TASKS tasks)."""
    if len(spec.tasks) <= SAVE_UP_TO_TASKS:
        write_templates(s, template_rows(version_id, spec, Dag.from_spec(spec)) or [])


def write_templates(s: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Store template rows in one statement; rows another transaction stored already are kept (identical)."""
    if rows:
        insert_rows(s.connection(), _TEMPLATES, rows, conflict_keys=("version_id", "position"))


def fill_from_drafts(s: Session, drafts: Iterable[RunDraft]) -> None:
    """Store the templates of the drafted cron runs' versions (those saved before migration 0010)."""
    rows: list[dict[str, Any]] = []
    seen: set[int] = set()
    for draft in drafts:
        version_id = draft.run["version_id"]
        if version_id in seen:
            continue
        seen.add(version_id)
        rows += draft_template(version_id, draft) or []
    write_templates(s, rows)


def supported(s: Session) -> bool:
    """Whether this database creates runs from templates (else every launch is drafted)."""
    return s.get_bind().dialect.name == "postgresql"


# One statement creates a batch's runs, their task instances and (for a launch whose record is new)
# their launched schedule records: data-modifying CTEs, each reading the rows the one before it
# inserted (the foreign keys are checked at the end of the statement, when all of them exist).
_LAUNCH_SQL = """
WITH launch AS (
    SELECT l.pipeline_id, v.at, v.text, l.new_record, l.ord
    FROM unnest(CAST(%(pipelines)b AS INTEGER[]), CAST(%(instants)b AS INTEGER[]), CAST(%(new_records)b AS BOOLEAN[]))
        WITH ORDINALITY AS l(pipeline_id, k, new_record, ord)
    JOIN unnest(CAST(%(ats)b AS TIMESTAMP[]), CAST(%(texts)b AS VARCHAR[])) WITH ORDINALITY AS v(at, text, k) ON v.k = l.k
), run AS (
    INSERT INTO runs (pipeline_id, version_id, project_id, trigger, state, params, execution_date,
        execution_date_text, debug_task, copied_from_id, created_by, runner, message, token_hash, timeout,
        deadline_at, created_at, started_at, ended_at, updated_at)
    SELECT p.id, p.current_version_id, p.project_id, %(trigger)s, %(state)s, CAST('{}' AS JSON), launch.at,
        launch.text, NULL, NULL, p.created_by, %(runner)s, '', NULL, t.run_timeout,
        CASE WHEN t.run_timeout <> 0 THEN CAST(%(now)s AS TIMESTAMP) + make_interval(secs => t.run_timeout) END,
        %(now)s, %(now)s, NULL, %(now)s
    FROM launch
    JOIN pipelines p ON p.id = launch.pipeline_id
    JOIN launch_templates t ON t.version_id = p.current_version_id AND t.position = 0
    ORDER BY launch.ord
    RETURNING id, pipeline_id, version_id, execution_date, execution_date_text
), task AS (
    INSERT INTO task_instances (run_id, task_name, state, try_number, max_tries, upstream_waiting, inputs,
        outputs, message, queued_at, started_at, ended_at, next_try_at)
    SELECT run.id, t.task_name, CASE WHEN t.queued THEN %(queued)s ELSE %(pending)s END, 0, t.max_tries,
        t.upstream_waiting, CAST('{}' AS JSON), CAST('{}' AS JSON), '', CASE WHEN t.queued THEN %(now)s END,
        NULL, NULL, NULL
    FROM run JOIN launch_templates t ON t.version_id = run.version_id
    ORDER BY run.id, t.position
    RETURNING id, run_id, queued_at IS NOT NULL AS queued
), record AS (
    INSERT INTO schedule_records (pipeline_id, execution_date, execution_date_text, status, message, run_id,
        created_at, updated_at)
    SELECT run.pipeline_id, run.execution_date, run.execution_date_text, %(launched)s, '', run.id, %(now)s, %(now)s
    FROM run JOIN launch ON launch.pipeline_id = run.pipeline_id AND launch.at = run.execution_date
    WHERE launch.new_record
    ORDER BY run.id
    ON CONFLICT (pipeline_id, execution_date) DO NOTHING
    RETURNING run_id
)
SELECT run.id, run.pipeline_id, record.run_id IS NOT NULL, queued.ids
FROM run
LEFT JOIN record ON record.run_id = run.id
LEFT JOIN (SELECT run_id, array_agg(id ORDER BY id) AS ids FROM task WHERE queued GROUP BY run_id) AS queued
    ON queued.run_id = run.id
"""


class Made(NamedTuple):
    """A cron run created from its version's template: its id, its queued task instances, whether
    its schedule record was inserted with it (launched; False: another scheduler had made it)."""

    run_id: int
    queued: list[int]
    recorded: bool


def create_from_templates(
    s: Session, launches: Sequence[Launch], runner: str, now: datetime
) -> dict[tuple[int, datetime], Made]:
    """Create and start the cron runs of `launches` whose pipeline's current version has a template.

    One statement however many runs: the runs, their task instances, and the launched records of
    the launches with `new_record` ("on conflict do nothing": the unique key is the arbiter). The
    rows equal what `draft_run` + `started_rows` + `insert_started` and the records' INSERT write.
    Return what was made by (pipeline id, instant); a launch missing from it was not made (no
    template): draft it. The pipelines must be locked by the caller (their current version is read
    here, D10).
    """
    if not launches or not supported(s):
        return {}
    naive = now.astimezone(UTC).replace(tzinfo=None)
    # A pass's launches share a few (instant, text) pairs: each bound once, the launches by number
    # (an integer array dumps several times faster than timestamps and strings).
    numbers: dict[tuple[datetime, str], int] = {}
    instants = [numbers.setdefault((launch.instant, launch.text), len(numbers) + 1) for launch in launches]
    params = {
        "trigger": Trigger.CRON.value,
        "state": RunState.RUNNING.value,
        "queued": TaskState.QUEUED.value,
        "pending": TaskState.PENDING.value,
        "launched": RecordStatus.LAUNCHED.value,
        "runner": runner,
        "now": naive,
        "pipelines": [launch.pipeline_id for launch in launches],
        "instants": instants,
        "new_records": [launch.new_record for launch in launches],
        "ats": [at.astimezone(UTC).replace(tzinfo=None) for at, _ in numbers],
        "texts": [text for _, text in numbers],
    }
    rows = s.connection().exec_driver_sql(_LAUNCH_SQL, params).all()
    runs = sorted(rows, key=itemgetter(0))  # ids are drawn in the SELECT's order: the launches' order
    # A pipeline's launches share its current version: all of them were made, or none.
    made = {pid for _, pid, _, _ in runs}
    keys = [(launch.pipeline_id, launch.instant) for launch in launches if launch.pipeline_id in made]
    return {
        key: Made(run_id, queued or [], recorded) for key, (run_id, _, recorded, queued) in zip(keys, runs, strict=True)
    }
