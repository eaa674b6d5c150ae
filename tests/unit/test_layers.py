"""The import layers (docs/architecture.md): core <- db <- use-cases <- adapters and entry points.

Every import in myapp/ (module level and inside functions: a late import is still a dependency)
is checked against ALLOWED, the table of what each top-level package may import, and against
FORBIDDEN_LIBRARIES (SQL only in db/, no Flask in db/). KNOWN_VIOLATIONS lists, edge by edge,
what the tree still breaks today, each with the change that removes it: the list only shrinks
(an entry that no longer occurs fails the test too, so a fix must delete its line). The purity
of myapp/core itself is checked in a fresh interpreter by tests/unit/core/test_purity.py.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

MYAPP = Path(__file__).resolve().parents[2] / "myapp"

# Lower layers first. A package may import itself, the packages listed, and `myapp` (the version).
PURE = {"core"}
BASE = {"core", "settings", "yaml_io"}
ALLOWED: dict[str, set[str]] = {
    # the pure core and the pure leaves beside it
    "core": set(),
    "settings": {"core"},
    "yaml_io": {"core"},
    "builtins": {"core", "yaml_io"},
    "catalog": {"core", "builtins", "yaml_io"},
    # technology adapters: the database, logs, the Kubernetes API
    "db": {"core"},
    "logs": BASE,
    "k8s": BASE,
    "artifacts": BASE,
    # use-cases: they apply core decisions through db/ and the adapters' ports
    "alerts": BASE | {"db"},
    "scheduling": BASE | {"db"},
    "retention": BASE | {"db"},
    "executor": BASE | {"db", "logs", "builtins", "k8s", "artifacts"},
    # wiring and entry points
    "services": BASE | {"db", "logs", "builtins", "k8s", "executor", "catalog", "artifacts"},
    "queue": BASE
    | {"db", "logs", "builtins", "k8s", "executor", "catalog", "services", "alerts", "scheduling", "retention"},
    "web": BASE | {"db", "logs", "builtins", "k8s", "executor", "catalog", "services", "alerts", "scheduling", "queue"},
    # the Python SDK: pure OPs and YAML; its local submit wires services like the CLI does
    "sdk": BASE | {"db", "logs", "services", "queue", "cli"},
    "cli": set(),  # the outermost entry point: may import every package (filled in below)
    "__main__": {"cli"},
}
ALLOWED["cli"] = set(ALLOWED) - {"cli", "__main__"}

# Libraries a package must not import: SQL lives in db/ only, and db/ is loaded by workers,
# beats and watchers that must not load Flask.
SQL = {"sqlalchemy"}
FORBIDDEN_LIBRARIES: dict[str, set[str]] = {
    "core": {"sqlalchemy", "flask", "flask_appbuilder", "celery", "kubernetes", "redis"},
    "db": {"flask", "flask_appbuilder", "celery", "kubernetes", "redis"},
    **{
        pkg: SQL
        for pkg in (
            "alerts",
            "scheduling",
            "retention",
            "executor",
            "cli",
            "services",
            "queue",
            "k8s",
            "logs",
            "catalog",
            "builtins",
        )
    },
    # web/security.py is Flask-AppBuilder's security manager: FAB's user model is queried there.
    "web": SQL,
}
LIBRARY_EXCEPTIONS = {("myapp.web.security", "sqlalchemy"), ("myapp.web.authz", "sqlalchemy")}

# Edges that break the table today (module -> imported module or library), each with the change
# that removes it. Empty since issue 16's phase B moved the last SQL into db/; an entry may only be
# added with a reason and a plan, and a new edge fails test_imports_follow_the_layers.
KNOWN_VIOLATIONS: set[tuple[str, str]] = set()


def module_name(path: Path) -> str:
    parts = list(path.relative_to(MYAPP.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def imports(path: Path, text: str | None = None) -> Iterator[str]:
    """Yield every module `path` imports, wherever the import statement is."""
    module = module_name(path)
    for node in ast.walk(ast.parse(path.read_text() if text is None else text)):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the importing package
                base = (
                    module.split(".")[: -node.level]
                    if path.name != "__init__.py"
                    else module.split(".")[: len(module.split(".")) - node.level + 1]
                )
                yield ".".join([*base, node.module or ""]).rstrip(".")
            else:
                yield node.module or ""


def sources() -> list[Path]:
    return sorted(p for p in MYAPP.rglob("*.py") if "migrations" not in p.parts)


def violations() -> set[tuple[str, str]]:
    found = set()
    for path in sources():
        module = module_name(path)
        pkg = package_of(module)
        for target in imports(path):
            top = target.split(".")[0]
            if top == "myapp":
                other = package_of(target)
                if other and other != pkg and other not in ALLOWED[pkg]:
                    found.add((module, ".".join(target.split(".")[:2]) if other in ALLOWED else target))
            elif top in FORBIDDEN_LIBRARIES.get(pkg, set()) and (module, top) not in LIBRARY_EXCEPTIONS:
                found.add((module, top))
    return found


def test_every_package_has_a_row() -> None:
    packages = {package_of(module_name(p)) for p in sources()} - {""}
    assert packages == set(ALLOWED), "add the new package to ALLOWED (and docs/architecture.md)"


def test_every_package_has_a_row_in_the_architecture_table() -> None:
    table = [
        line for line in (MYAPP.parent / "docs" / "architecture.md").read_text().splitlines() if line.startswith("| `")
    ]
    missing = [
        pkg
        for pkg in ALLOWED
        if pkg != "__main__"
        and not any(f"`{pkg}/`" in line.split("|")[1] or f"`{pkg}.py`" in line.split("|")[1] for line in table)
    ]
    assert not missing, f"add a row to docs/architecture.md for {missing}"


def test_imports_follow_the_layers() -> None:
    new = violations() - KNOWN_VIOLATIONS
    assert not new, f"imports against the layer table: {sorted(new)}"


def test_the_known_violations_only_shrink() -> None:
    gone = KNOWN_VIOLATIONS - violations()
    assert not gone, f"fixed, delete from KNOWN_VIOLATIONS: {sorted(gone)}"


def test_the_layer_check_sees_late_imports() -> None:
    code = "def f():\n    from myapp.web.api import services\n    import sqlalchemy\n"
    found = list(imports(MYAPP / "db" / "probe.py", code))
    assert "myapp.web.api" in found and "sqlalchemy" in found
