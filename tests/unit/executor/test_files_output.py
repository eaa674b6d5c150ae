"""A `files` output (docs/rules.md R15, docs/templates.md): a directory whose entries are a list of
files, each stored as its own artifact so that one slice fetches one item."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from myapp.artifacts.repository import LocalArtifacts
from myapp.core.errors import OutputError
from myapp.core.model import OutputSpec
from myapp.core.output_paths import FILES_MANIFEST
from myapp.executor.outputs import Confinement, collect_outputs
from myapp.sdk.runtime import MANIFEST, write_artifact


def collect(workdir: Path, store: Path, path: str = "parts") -> dict[str, object]:
    out = OutputSpec(name="parts", path=path, type="files")
    return collect_outputs("t", [out], workdir, Confinement(), artifacts=LocalArtifacts(store), run_id=7, try_number=1)


def test_each_entry_in_name_order_is_one_stored_item(tmp_path: Path) -> None:
    work = tmp_path / "work"
    (work / "parts" / "b.txt").parent.mkdir(parents=True)
    (work / "parts" / "b.txt").write_text("B")
    (work / "parts" / "a.txt").write_text("A")
    (work / "parts" / "c").mkdir()
    (work / "parts" / "c" / "inner").write_text("C")
    produced = collect(work, tmp_path / "store")
    assert produced["parts"]["type"] == "files"  # type: ignore[index]
    paths = [Path(p) for p in produced["parts"]["paths"]]  # type: ignore[index]
    assert [p.name for p in paths] == ["a.txt", "b.txt", "c"]
    assert [p.read_text() for p in paths[:2]] == ["A", "B"] and (paths[2] / "inner").read_text() == "C"
    assert len({p.parent for p in paths}) == 3  # one artifact per item
    (work / "parts" / "a.txt").write_text("changed")  # stored copies, not the attempt's files
    assert paths[0].read_text() == "A"


def test_an_empty_directory_is_an_empty_list(tmp_path: Path) -> None:
    (tmp_path / "work" / "parts").mkdir(parents=True)
    assert collect(tmp_path / "work", tmp_path / "store")["parts"] == {"type": "files", "paths": []}


def test_the_sdk_manifest_gives_the_order(tmp_path: Path) -> None:
    assert FILES_MANIFEST == MANIFEST  # the SDK runtime cannot import myapp.core: the two must agree
    src = tmp_path / "src"
    src.mkdir()
    names = ["z.txt", "a.txt", "m.txt"]
    for name in names:
        (src / name).write_text(name)
    write_artifact([src / n for n in names], "paths", tmp_path / "work" / "parts")
    paths = collect(tmp_path / "work", tmp_path / "store")["parts"]["paths"]  # type: ignore[index]
    assert [Path(p).read_text() for p in paths] == names


@pytest.mark.parametrize(
    ("setup", "words"),
    [
        ("file", "is a file; a files output is a directory"),
        ("missing", "not found"),
        ("link", "symbolic link"),
        ("manifest-escape", "not in parts"),
        ("manifest-bad", "not a list of items"),
    ],
)
def test_mistakes_fail_the_attempt_naming_the_output(tmp_path: Path, setup: str, words: str) -> None:
    work = tmp_path / "work"
    work.mkdir()
    if setup == "file":
        (work / "parts").write_text("one")
    elif setup != "missing":
        (work / "parts").mkdir()
        (tmp_path / "secret").write_text("s")
        if setup == "link":
            (work / "parts" / "x").symlink_to(tmp_path / "secret")
        elif setup == "manifest-escape":
            (work / "parts" / FILES_MANIFEST).write_text(json.dumps({"items": ["../../secret"]}))
        else:
            (work / "parts" / FILES_MANIFEST).write_text("{}")
    with pytest.raises(OutputError, match=words) as caught:
        collect(work, tmp_path / "store")
    assert "'parts'" in str(caught.value)
