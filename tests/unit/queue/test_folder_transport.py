"""The folder broker (myapp/queue/folder_transport.py): a consumer never reads a half-written message."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from queue import Empty
from typing import Any

import pytest
from kombu import Connection

from myapp.queue import folder_transport


def folder_options(tmp_path: Path) -> dict[str, Any]:
    # Every folder in tmp_path: kombu's control folder defaults to ./control (the working directory).
    queue, control = tmp_path / "queue", tmp_path / "control"
    queue.mkdir(exist_ok=True)
    control.mkdir(exist_ok=True)
    return {
        "data_folder_in": str(queue),
        "data_folder_out": str(queue),
        "processed_folder": str(queue),
        "store_processed": False,
        "control_folder": str(control),
    }


@pytest.fixture()
def channel(tmp_path: Path) -> Iterator[Any]:
    options = folder_options(tmp_path)
    with Connection(
        "filesystem://", transport="myapp.queue.folder_transport:Transport", transport_options=options
    ) as conn:
        yield conn.default_channel


def test_a_message_appears_only_once_written_whole(channel: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    seen_before_rename: list[str] = []
    rename = os.replace

    def consumer_looks_then_rename(src: str, dst: str) -> None:
        # The message is written but not renamed yet: what a consumer polling now would get.
        try:
            seen_before_rename.append(channel._get("q"))
        except Empty:
            seen_before_rename.append("nothing")
        rename(src, dst)

    monkeypatch.setattr(folder_transport.os, "replace", consumer_looks_then_rename)
    channel._put("q", {"body": "hello"})
    assert seen_before_rename == ["nothing"]
    assert channel._get("q") == {"body": "hello"}
    assert [p for p in os.listdir(channel.data_folder_in)] == []  # taken, and no hidden leftovers


def test_kombus_own_writer_shows_a_consumer_an_empty_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Why the subclass exists: kombu's _put creates the file, locks it, then writes. A consumer
    # polling right after the creation (here: while the lock is taken) reads an empty file.
    from kombu.transport import filesystem

    with Connection("filesystem://", transport_options=folder_options(tmp_path)) as conn:
        plain = conn.default_channel
        errors: list[Exception] = []
        real_lock = filesystem.lock

        def consumer_looks_then_lock(f: Any, flags: int) -> None:
            try:
                plain._get("q")
            except ValueError as exc:  # JSONDecodeError: the Celery worker stops on this
                errors.append(exc)
            except Empty:
                pass
            real_lock(f, flags)

        monkeypatch.setattr(filesystem, "lock", consumer_looks_then_lock)
        plain._put("q", {"body": "hello"})
        assert len(errors) == 1


def test_an_unreadable_message_file_is_skipped_not_fatal(channel: Any) -> None:
    folder = Path(channel.data_folder_in)
    (folder / "1_a.q.msg").write_bytes(b"")  # what kombu's own writer shows mid-write
    (folder / "2_b.q.msg").write_bytes(b"{not json")
    channel._put("q", {"body": "after"})
    assert channel._get("q") == {"body": "after"}
    with pytest.raises(Empty):
        channel._get("q")
