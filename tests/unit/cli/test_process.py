"""`myapp standalone` restarts a child that dies (the database keeps the work) and gives up on a crash loop."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

from myapp.cli.process import STOP_SIGNALS, _supervise


def test_dead_child_is_restarted_then_the_crash_loop_stops(tmp_path: Path) -> None:
    count = tmp_path / "starts"
    code = (
        f"import pathlib; p = pathlib.Path({str(count)!r}); "
        "p.write_text(str(int(p.read_text()) + 1) if p.exists() else '1'); raise SystemExit(3)"
    )
    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    restarting: list[int] = []
    try:
        with pytest.raises(SystemExit) as exc:
            _supervise(
                [[sys.executable, "-c", code]], dict(os.environ), max_restarts=2, before_restart=restarting.append
            )
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    assert exc.value.code == 1
    assert count.read_text() == "3"  # the first start and two restarts
    assert restarting == [0, 0]  # told before each restart (standalone re-sends queued tasks)


def test_the_ready_line_waits_for_the_web_server_and_is_said_once(capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    from myapp.cli.process import ReadyLine

    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]  # bound, not listening: a connection is refused, as before the web binds
    after: list[str] = []
    ready = ReadyLine("0.0.0.0", port, "myapp standalone: http://0.0.0.0:PORT/", after=lambda: after.append("warned"))
    ready()
    assert capsys.readouterr().out == "" and after == []
    probe.listen()
    try:
        ready()
        ready()
    finally:
        probe.close()
    assert capsys.readouterr().out == "myapp standalone: http://0.0.0.0:PORT/\n"
    assert after == ["warned"]
