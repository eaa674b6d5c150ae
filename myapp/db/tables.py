"""The relational schema: projects, templates, pipelines and versions, runs, task instances,
attempts and schedule records. Our own declarative base (db/base.py): foreign keys point at
Flask-AppBuilder's ab_user through the reference `USERS` there, and Alembic merges FAB's tables in
(one history) -- this package never imports Flask-AppBuilder.

Holds no business rule; the stores in this package decide nothing either, they apply core decisions.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from myapp.core.states import ATTEMPT, RECORD, RUN, TASK, TEMPLATE
from myapp.db.base import USERS, Base, metadata
from myapp.db.sealed import SealedJson
from myapp.db.types import Json, UTCDateTime

__all__ = ["USERS", "Json", "metadata"]


class Project(Base):
    __tablename__ = "projects"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ProjectMember(Base):
    __tablename__ = "project_members"
    __table_args__ = (UniqueConstraint("project_id", "user_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("ab_user.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))  # owner | member | viewer


class TaskTemplate(Base):
    __tablename__ = "task_templates"
    __table_args__ = (UniqueConstraint("name", "version"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(63), index=True)
    version: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))
    category: Mapped[str] = mapped_column(String(63), default="general")
    description: Mapped[str] = mapped_column(Text, default="")
    spec: Mapped[dict[str, Any]] = mapped_column(SealedJson)  # secret defaults sealed (myapp/db/sealed.py)
    readme: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(String(16))  # builtin | plugin | package | user
    status: Mapped[str] = mapped_column(String(16), default=TEMPLATE.initial.value)  # core/states.py TEMPLATE
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"), nullable=True)
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id"), nullable=True)
    # who may use a published user template: its project only, or every project (chosen at approval)
    publish_scope: Mapped[str | None] = mapped_column(String(16), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TemplateReview(Base):
    __tablename__ = "template_reviews"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("task_templates.id", ondelete="CASCADE"), index=True)
    action: Mapped[str] = mapped_column(String(16))  # submit | approve | reject
    reason: Mapped[str] = mapped_column(Text, default="")
    user_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"), nullable=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class Pipeline(Base):
    __tablename__ = "pipelines"
    __table_args__ = (
        UniqueConstraint("project_id", "name"),
        Index("ix_pipelines_due", "schedule_enabled", "next_fire_at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    name: Mapped[str] = mapped_column(String(63))
    description: Mapped[str] = mapped_column(Text, default="")
    current_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("pipeline_versions.id", use_alter=True, name="fk_pipelines_current_version"),
        nullable=True,
    )
    created_by: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The effective schedule (copied from the current version) and the scheduler's own state.
    schedule_type: Mapped[str] = mapped_column(String(16), default="once")
    cron: Mapped[str | None] = mapped_column(String(255), nullable=True)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    start_time: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)  # epoch start
    depends_on_past: Mapped[bool] = mapped_column(Boolean, default=False)
    expired_limit: Mapped[int] = mapped_column(Integer, default=1)
    max_active_runs: Mapped[int] = mapped_column(Integer, default=1)
    schedule_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    next_fire_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_tick_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    schedule_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    alerts: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)


class PipelineVersion(Base):
    __tablename__ = "pipeline_versions"
    __table_args__ = (UniqueConstraint("pipeline_id", "number"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pipeline_id: Mapped[int] = mapped_column(ForeignKey("pipelines.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    spec: Mapped[dict[str, Any]] = mapped_column(SealedJson)  # secrets sealed (myapp/db/sealed.py)
    spec_hash: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PipelineTask(Base):
    """Index of a version's tasks (the version's spec is the source of truth)."""

    __tablename__ = "pipeline_tasks"
    __table_args__ = (UniqueConstraint("version_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("pipeline_versions.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(63))
    template: Mapped[str | None] = mapped_column(String(100), nullable=True)
    image: Mapped[str | None] = mapped_column(String(255), nullable=True)
    upstream: Mapped[list[str]] = mapped_column(Json, default=list)


class Run(Base):
    __tablename__ = "runs"
    __table_args__ = (
        Index("ix_runs_pipeline_trigger_state", "pipeline_id", "trigger", "state"),
        Index("ix_runs_created", "created_at"),
        # The runs list (newest first) filtered by pipeline, state or project: ordered index scans,
        # index-only for deep pages (migration 0003_runs_list). ix_runs_list_state also serves every
        # query by state alone (ix_runs_state, its prefix, dropped by migration 0013).
        Index("ix_runs_list_pipeline", "pipeline_id", "id"),
        Index("ix_runs_list_state", "state", "id"),
        Index("ix_runs_list_project", "project_id", "id"),
        # A run's id names its working directory, logs, artifacts and live-log keys: SQLite must never
        # give a deleted run's id to a new run (AUTOINCREMENT; migration 0011). Sequences never go back.
        {"sqlite_autoincrement": True},
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pipeline_id: Mapped[int] = mapped_column(ForeignKey("pipelines.id", ondelete="CASCADE"))
    version_id: Mapped[int] = mapped_column(ForeignKey("pipeline_versions.id"))
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"))
    trigger: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default=RUN.initial.value)  # core/states.py RUN
    # Values of secret parameters are stored sealed and stay sealed when read: views show them masked
    # (db/run_views.py), and only the executor and a copy open them (myapp/db/sealed.py).
    params: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    execution_date: Mapped[datetime] = mapped_column(UTCDateTime)
    execution_date_text: Mapped[str] = mapped_column(String(32))
    debug_task: Mapped[str | None] = mapped_column(String(63), nullable=True)
    copied_from_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"), nullable=True)
    runner: Mapped[str] = mapped_column(String(255), default="")
    message: Mapped[str] = mapped_column(Text, default="")
    token_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    timeout: Mapped[int] = mapped_column(Integer, default=0)
    deadline_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TaskInstance(Base):
    __tablename__ = "task_instances"
    __table_args__ = (
        UniqueConstraint("run_id", "task_name"),
        Index("ix_ti_run_state", "run_id", "state"),
        Index("ix_ti_state_queued", "state", "queued_at"),
        Index("ix_ti_slices", "run_id", "slice_of", "state", "slice_index"),  # R15: a sliced task's slices
        # Room on each page for a row's next version, so a counter update (upstream_waiting, in no
        # index) is HOT and touches none of the indexes (migration 0009).
        # Ids never reused on SQLite: a task instance's id is what a Celery message names (migration 0011).
        {"postgresql_with": {"fillfactor": 70}, "sqlite_autoincrement": True},
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    task_name: Mapped[str] = mapped_column(String(63))
    state: Mapped[str] = mapped_column(String(16), default=TASK.initial.value)  # core/states.py TASK
    try_number: Mapped[int] = mapped_column(Integer, default=0)  # attempts started so far
    max_tries: Mapped[int] = mapped_column(Integer, default=1)  # highest try_number allowed
    inputs: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    outputs: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    message: Mapped[str] = mapped_column(Text, default="")
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    next_try_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Direct upstream tasks that have not ended yet (core.engine.count_waiting); with the ended task's
    # outcome it is what the task's trigger rule decides from (R13). Tasks with the same upstream
    # tasks share one count, kept in the row of the first of them (core.dag.Dag.counted_by, whatever
    # that task's own state); the others' values are their counts at the run's start, not read.
    # NULL: not known (rows from before migration 0004), counted again from the states.
    upstream_waiting: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Slices (R15, core/slices.py, db/slice_store.py). A slice `NAME[i]`: its task, index and item
    # ({input: {type, value|path}}). A sliced task: its slices not ended yet (NULL until it starts).
    slice_of: Mapped[str | None] = mapped_column(String(63), nullable=True)
    slice_index: Mapped[int | None] = mapped_column(Integer, nullable=True)
    slice_item: Mapped[dict[str, Any] | None] = mapped_column(Json, nullable=True)
    slices_left: Mapped[int | None] = mapped_column(Integer, nullable=True)


class TaskAttempt(Base):
    __tablename__ = "task_attempts"
    __table_args__ = (
        UniqueConstraint("task_instance_id", "try_number"),
        Index("ix_attempt_state_heartbeat", "state", "heartbeat_at"),
        # Ids never reused on SQLite: an attempt's id names its pods and log streams (migration 0011).
        {"sqlite_autoincrement": True},
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_instance_id: Mapped[int] = mapped_column(ForeignKey("task_instances.id", ondelete="CASCADE"))
    try_number: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default=ATTEMPT.initial.value)  # core/states.py ATTEMPT
    worker: Mapped[str] = mapped_column(String(255), default="")
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    pod_names: Mapped[list[str]] = mapped_column(Json, default=list)
    exit_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    message: Mapped[str] = mapped_column(Text, default="")
    kill_requested: Mapped[str | None] = mapped_column(String(32), nullable=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime)
    deadline_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    log_path: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    container: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    events: Mapped[list[Any]] = mapped_column(Json, default=list)


class ScheduleRecord(Base):
    __tablename__ = "schedule_records"
    __table_args__ = (
        UniqueConstraint("pipeline_id", "execution_date", name="uq_schedule_record_instant"),
        Index("ix_schedule_records_status", "pipeline_id", "status", "execution_date"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pipeline_id: Mapped[int] = mapped_column(ForeignKey("pipelines.id", ondelete="CASCADE"))
    execution_date: Mapped[datetime] = mapped_column(UTCDateTime)  # the fire instant (UTC)
    execution_date_text: Mapped[str] = mapped_column(String(32))  # rendered in the pipeline's zone
    status: Mapped[str] = mapped_column(String(16), default=RECORD.initial.value)  # core/states.py RECORD
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"), nullable=True)
    message: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ScheduleSkip(Base):
    """Fire instants passed over without a record (D12): how many, from when to when."""

    __tablename__ = "schedule_skips"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pipeline_id: Mapped[int] = mapped_column(ForeignKey("pipelines.id", ondelete="CASCADE"), index=True)
    first_instant: Mapped[datetime] = mapped_column(UTCDateTime)
    last_instant: Mapped[datetime] = mapped_column(UTCDateTime)
    count: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
