"""A failing test's report carries the logs of the processes its fixtures started (tests/conftest.py),
including the watcher a Kubernetes fixture keeps under `.cluster`: without them a failure in CI says
what was waited for, never why it did not happen."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


def test_a_failure_report_shows_the_worker_and_watcher_logs(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_inner="""
        from pathlib import Path
        from types import SimpleNamespace
        import pytest

        @pytest.fixture()
        def engine_services(tmp_path):
            worker = SimpleNamespace(log=tmp_path / "worker-1.log")
            watcher = SimpleNamespace(log=tmp_path / "watcher-1.log")
            worker.log.write_text("the worker said why")
            watcher.log.write_text("the watcher said why")
            return SimpleNamespace(worker=worker, cluster=SimpleNamespace(worker=worker, watcher=watcher))

        def test_fails(engine_services):
            assert False, "waited in vain"
    """
    )
    result = pytester.runpytest("-p", "tests.conftest", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "the worker said why" in out and "the watcher said why" in out
    assert out.count("the worker said why") == 1  # one process, one section
