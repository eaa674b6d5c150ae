"""How the CLI shows things: one time format with its zone, aligned tables, "N of M" counts, log lines.

Every listing and detail command formats through here, so times, columns and truncation read
the same everywhere (README "Commands"; the pages use the same time format, ui.tsx `fmtTime`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import click

from myapp.core.errors import SpecError
from myapp.logs.attempt_logs import LogLine, Stream


def when(value: datetime | str | None, tz: str = "UTC", *, ms: bool = False) -> str:
    """Return an instant as `2026-12-06 15:40:01 UTC` (`... UTC+08:00` in another zone), as the pages do."""
    if value is None or value == "":
        return "-"
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    local = at.astimezone(ZoneInfo(tz))
    text = local.strftime("%Y-%m-%d %H:%M:%S") + (f".{local.microsecond // 1000:03d}" if ms else "")
    if tz in ("UTC", "Etc/UTC"):
        return text + " UTC"
    offset = local.strftime("%z")
    return f"{text} UTC{offset[:3]}:{offset[3:]}"


def parse_instant(text: str | None, option: str, tz: str = "UTC") -> datetime | None:
    """Parse `YYYY-MM-DD` (midnight in `tz`) or an ISO instant; a SpecError naming `option` if neither."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise SpecError(option, f"{text!r} is not a date (YYYY-MM-DD) or an ISO 8601 instant") from None
    return value.replace(tzinfo=ZoneInfo(tz)) if value.tzinfo is None else value


def duration(start: str | None, end: str | None, now: datetime | None = None) -> str:
    """Return the time between two ISO instants as `1m 05s` ("-" if it has not started)."""
    if not start:
        return "-"
    began = datetime.fromisoformat(start)
    ended = datetime.fromisoformat(end) if end else (now or datetime.now(UTC))
    seconds = max(0, round((ended - began).total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, right: Sequence[int] = (0,)) -> None:
    """Print rows under headers, each column as wide as its widest cell (columns in `right` right-aligned)."""
    cells = [[str(h) for h in headers], *[["" if c is None else str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        parts = [cell.rjust(widths[i]) if i in right else cell.ljust(widths[i]) for i, cell in enumerate(row)]
        click.echo("  ".join(parts).rstrip())


def shown_of(shown: int, total: int, *, more: str = "--all or --limit N") -> None:
    """Print `N of M ...` under a listing, and how to see the rest when it was cut."""
    if shown < total:
        click.echo(f"{shown} of {total} shown (newest first); {more} for more")
    else:
        click.echo(f"{total} in all")


def log_line(line: LogLine, tz: str = "UTC") -> str:
    """Return a stored log line as shown: its time with zone, a mark for stderr and myapp's own lines."""
    mark = {Stream.OUT: "", Stream.ERR: "[stderr] ", Stream.SYS: "[myapp] "}[line.stream]
    stamp = when(line.at, tz, ms=True) if line.at else "-"
    return f"{stamp}  {mark}{line.text}"
