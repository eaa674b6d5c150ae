"""Tables the scheduler and the alerts add to the schema: the alert outbox (migration 0002) and the
launch templates (migration 0010).

The schedule's own columns live on `pipelines`, and schedule records and skipped spans in
tables.py. Holds no business rule.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from myapp.core.states import ALERT
from myapp.db.base import Base
from myapp.db.types import Json, UTCDateTime


class AlertOutbox(Base):
    """One webhook delivery of one run outcome, written in the transaction that ends the run."""

    __tablename__ = "alert_outbox"
    __table_args__ = (Index("ix_alert_outbox_due", "status", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pipeline_id: Mapped[int] = mapped_column(ForeignKey("pipelines.id", ondelete="CASCADE"))
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    event: Mapped[str] = mapped_column(String(16))  # failed | succeeded | timeout | stopped
    url: Mapped[str] = mapped_column(String(2048))
    payload: Mapped[dict[str, Any]] = mapped_column(Json)
    status: Mapped[str] = mapped_column(String(16), default=ALERT.initial.value)  # core/states.py ALERT
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class LaunchTemplate(Base):
    """One task instance of what a cron run of a version starts with (myapp/db/launch_templates.py).

    Written when the version is saved (or by the first pass that launches it): the scheduler creates
    runs of a version with a template by INSERT ... SELECT from these rows, without parsing the
    version. The row of position 0 also carries the run's timeout. Versions never change, so
    neither do their rows; a version the template cannot express has none.
    """

    __tablename__ = "launch_templates"
    version_id: Mapped[int] = mapped_column(
        ForeignKey("pipeline_versions.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)  # the DAG's order
    task_name: Mapped[str] = mapped_column(String(63))
    max_tries: Mapped[int] = mapped_column(Integer)
    upstream_waiting: Mapped[int] = mapped_column(Integer)
    queued: Mapped[bool] = mapped_column(Boolean)  # the run's start queues it (no upstream task)
    run_timeout: Mapped[int] = mapped_column(Integer)  # the version's run timeout (0: none)
