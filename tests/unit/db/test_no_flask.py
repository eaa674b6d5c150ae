"""myapp.db and the worker's entry load no Flask (docs/decisions/0009-db-without-flask.md).

Worker, beat and watcher processes import db/ and the Celery app; Flask-AppBuilder belongs to the
web app. Checked in a fresh interpreter, since this test process may have loaded Flask already.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

FLASK = ("flask", "flask_appbuilder", "flask_sqlalchemy", "flask_login", "flask_jwt_extended")

CODE = """
import importlib, pkgutil, sys
import myapp.db as db
for m in pkgutil.iter_modules(db.__path__):
    if m.name != "migrations":
        importlib.import_module("myapp.db." + m.name)
{extra}
print(",".join(sorted(m for m in sys.modules if m.split(".")[0] in {flask!r})))
"""

WORKER = """
import myapp.alerts.delivery, myapp.scheduling.scheduler, myapp.executor.worker, myapp.cli.process
from myapp.settings import load_settings
from myapp.queue.celery_app import create_celery
app, deps = create_celery(load_settings())
deps.get()          # the worker's services, as its first task builds them
"""


def loaded_flask_modules(extra: str, home: Path) -> str:
    env = {**os.environ, "MYAPP_HOME": str(home)}
    env.pop("MYAPP_DATABASE_URL", None)
    out = subprocess.run(
        [sys.executable, "-c", CODE.format(extra=extra, flask=FLASK)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=home,
    )
    return out.stdout.strip()


@pytest.mark.parametrize("extra", ["", WORKER], ids=["db", "worker"])
def test_db_and_the_worker_entry_load_no_flask(extra: str, tmp_path: Path) -> None:
    assert loaded_flask_modules(extra, tmp_path) == ""


def test_the_check_sees_flask_when_it_is_loaded(tmp_path: Path) -> None:
    assert "flask_appbuilder" in loaded_flask_modules("import flask_appbuilder", tmp_path)
