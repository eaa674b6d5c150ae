"""The folder broker of `myapp standalone`: kombu's filesystem transport, made safe to share.

kombu 5.7's filesystem transport writes a message by creating its file and then writing it, while
a consumer takes any file whose name ends in `.<queue>.msg`: a consumer listing the folder in
between reads an empty file, fails to decode it, and the Celery worker stops with "Unrecoverable
error: JSONDecodeError" (kombu issue #1551; seen here during a backfill, where the worker and the
scheduler's wake-ups write messages while the worker reads). Here a message is written under a
hidden name and renamed into place (atomic in one folder), so a consumer only ever sees whole
files; a file that still cannot be decoded (written by another program) is skipped with a warning
rather than stopping the worker: the database says what is queued and the reconciler re-sends it.
"""

from __future__ import annotations

import logging
import os
import uuid
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.json import dumps

log = logging.getLogger(__name__)


class Channel(filesystem.Channel):
    # kombu's two base classes declare _put differently; this follows filesystem.Channel's.
    def _put(self, queue: Any, payload: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        """Put a message on `queue`: write it under a hidden name, then rename it into place."""
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        hidden = os.path.join(self.data_folder_out, f".{name}.part")  # never matches `.<queue>.msg`
        try:
            with open(hidden, "wb") as f:
                f.write(dumps(payload).encode())  # type: ignore[no-untyped-call]
            os.replace(hidden, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc

    def _get(self, queue: Any, timeout: Any = None) -> Any:
        """Get the next message of `queue`, skipping a file that is not a message."""
        while True:  # each failed file has been taken out of the folder: the loop ends with Empty
            try:
                return super()._get(queue)  # type: ignore[no-untyped-call]
            except ValueError as exc:
                log.warning("skipped an unreadable message file in queue %r: %s", queue, exc)


class Transport(filesystem.Transport):
    Channel = Channel
