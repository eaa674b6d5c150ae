"""The watcher's attempt book (myapp.k8s.tracked.AttemptBook): the group's attempts from the database
(db/watcher_attempts.py, where its SQL is) as the watcher's TrackedAttempt values.
"""

from __future__ import annotations

from collections.abc import Collection

from myapp.db.watcher_attempts import WatcherAttempts
from myapp.k8s.tracked import TrackedAttempt


class PodAttempts(WatcherAttempts):
    """Attempts owned by one worker group (TaskAttempt.worker == `worker`)."""

    def load(self, ids: Collection[int]) -> dict[int, TrackedAttempt]:
        """Return the attempts among `ids` (in any state) with what the watcher needs of them."""
        return {
            aid: TrackedAttempt(aid, run_id, task, try_number, started, deadline, dict(container or {}))
            for aid, run_id, task, try_number, started, deadline, container in self.rows(ids)
        }
