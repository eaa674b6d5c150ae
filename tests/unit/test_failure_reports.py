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


def test_a_failure_report_shows_logs_the_test_s_own_processes_wrote(pytester: pytest.Pytester) -> None:
    # A standalone, a burst worker or a private server started by the test itself logs into its
    # tmp_path or its module's home: what it wrote during the test is shown, older logs are not.
    pytester.makepyfile(
        test_inner="""
        import os
        import pytest

        @pytest.fixture(scope="module")
        def module_home(tmp_path_factory):
            home = tmp_path_factory.mktemp("home")
            old = home / "redis-1.log"
            old.write_text("an older module's server")
            os.utime(old, (1, 1))
            return home

        def test_fails(tmp_path, module_home):
            (tmp_path / "standalone.log").write_text("the standalone said why")
            (module_home / "worker-2.log").write_text("the burst worker said why")
            assert False, "waited in vain"
    """
    )
    result = pytester.runpytest("-p", "tests.conftest", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "the standalone said why" in out and "the burst worker said why" in out
    assert "an older module's server" not in out
