"""The core imports no I/O library (docs/rules.md S2), checked in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys

FORBIDDEN = ("sqlalchemy", "celery", "kubernetes", "flask", "redis", "psycopg", "requests", "yaml")


def test_importing_the_core_loads_no_io_library() -> None:
    code = (
        "import importlib, pkgutil, sys, myapp.core as c\n"
        "for m in pkgutil.iter_modules(c.__path__): importlib.import_module('myapp.core.' + m.name)\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
