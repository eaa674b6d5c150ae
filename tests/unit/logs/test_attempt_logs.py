"""The stored log line format (myapp/logs/attempt_logs.py): stamped when written, stream kept, old lines still read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from myapp.logs.attempt_logs import AttemptLog, LogKey, LogLine, LogReader, Stream, format_line, parse_line

AT = datetime(2026, 12, 6, 15, 40, 1, 123456, tzinfo=UTC)


def test_a_line_round_trips_with_its_time_and_stream() -> None:
    stored = format_line(AT, Stream.ERR, "warning: low disk\n")
    assert stored == "2026-12-06T15:40:01.123Z err warning: low disk\n"
    assert parse_line(stored) == LogLine(AT.replace(microsecond=123000), Stream.ERR, "warning: low disk\n")


def test_a_line_archived_before_stamps_reads_as_stdout_without_time() -> None:
    assert parse_line("outpraram1\n") == LogLine(None, Stream.OUT, "outpraram1\n")
    assert parse_line("2026-12-06 not a stamp\n").at is None


def test_the_stamp_is_taken_when_written_not_when_read(tmp_path: Path) -> None:
    clock = iter([AT, AT + timedelta(seconds=5), AT + timedelta(seconds=6)])
    log = AttemptLog(LogKey(1, "t", 1), tmp_path, None, clock=lambda: next(clock))
    log.write("first")
    log.write("oops\n", Stream.ERR)
    log.write("timed out", Stream.SYS)
    log.close()
    reader = LogReader(tmp_path, None)
    entries, finished = reader.entries(LogKey(1, "t", 1))
    assert finished
    assert [(e.at, e.stream, e.text) for e in entries] == [
        (AT.replace(microsecond=123000), Stream.OUT, "first\n"),
        (AT.replace(microsecond=123000) + timedelta(seconds=5), Stream.ERR, "oops\n"),
        (AT.replace(microsecond=123000) + timedelta(seconds=6), Stream.SYS, "timed out\n"),
    ]
    assert reader.entries(LogKey(1, "t", 1))[0] == entries  # read again: the same stamps
    assert reader.lines(LogKey(1, "t", 1))[0] == ["first\n", "oops\n", "[myapp] timed out\n"]


def test_a_multi_line_message_is_stored_one_stamped_line_each(tmp_path: Path) -> None:
    log = AttemptLog(LogKey(2, "t", 1), tmp_path, None, clock=lambda: AT)
    log.write("internal error:\nTraceback\n  line", Stream.SYS)
    log.close()
    entries, _ = LogReader(tmp_path, None).entries(LogKey(2, "t", 1))
    assert [e.text for e in entries] == ["internal error:\n", "Traceback\n", "  line\n"]
    assert {e.stream for e in entries} == {Stream.SYS}
