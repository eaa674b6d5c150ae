"""The artifact repository (myapp/artifacts/): the same contract on disk (file://) and on a real
S3-protocol server on loopback (moto's server mode): a file and a directory come back identical
(relative names, bytes, modes, empty subdirectories, links kept as links), downloads, retention by
run, records of the disk repository still readable after a switch to S3, and archives that would
write outside their target refused."""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from myapp.artifacts import LocalArtifacts, RemoteArtifacts, open_repository
from myapp.artifacts.repository import DIR_ARCHIVE
from myapp.core.errors import ArtifactError
from myapp.core.output_paths import artifact_key
from myapp.core.ports import ArtifactRepository
from myapp.settings import Settings
from tests.s3server import S3Server

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def tree(root: Path) -> dict[str, object]:
    """Return every entry under `root` by relative name: bytes and mode of a file, a link's target, 'dir'."""
    found: dict[str, object] = {}
    for base, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(base, name)
            rel = str(path.relative_to(root))
            if path.is_symlink():
                found[rel] = ("link", os.readlink(path))
            elif path.is_dir():
                found[rel] = "dir"
            else:
                found[rel] = (path.read_bytes(), path.stat().st_mode & 0o777)
    return found


def make_directory(root: Path) -> Path:
    out = root / "model"
    (out / "sub" / "deeper").mkdir(parents=True)
    (out / "empty").mkdir()
    (out / "weights.bin").write_bytes(bytes(range(256)) * 40)
    (out / "sub" / "notes.txt").write_text("line one\n")
    (out / "sub" / "deeper" / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (out / "sub" / "deeper" / "run.sh").chmod(0o755)
    (out / "latest").symlink_to("weights.bin")
    return out


@pytest.fixture(params=["file", "s3"])
def repo(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ArtifactRepository]:
    if request.param == "file":
        yield open_repository(Settings(home=tmp_path / "home"))
        return
    s3: S3Server = request.getfixturevalue("s3")
    settings = Settings(
        home=tmp_path / "home", artifact_repository=s3.url(f"t-{tmp_path.name}"), artifact_s3_endpoint_url=s3.endpoint
    )
    yield open_repository(settings)


def test_a_file_and_a_directory_come_back_identical(repo: ArtifactRepository, tmp_path: Path) -> None:
    made = tmp_path / "made"
    (made).mkdir()
    (made / "message.txt").write_text("hello\n")
    directory = make_directory(made)
    file_at = repo.put(made / "message.txt", artifact_key(7, "step1", 1, "msg"))
    dir_at = repo.put(directory, artifact_key(7, "step1", 1, "model"))
    for consumer in ("c1", "c2"):  # each consumer gets its own copy
        got = repo.fetch(file_at, tmp_path / consumer / "inputs" / "msg")
        assert got == tmp_path / consumer / "inputs" / "msg" / "message.txt" and got.read_text() == "hello\n"
        tree_at = repo.fetch(dir_at, tmp_path / consumer / "inputs" / "model")
        assert tree_at.name == "model" and tree(tree_at) == tree(directory)
    assert repo.holds(file_at) and repo.holds(dir_at)
    with repo.open(file_at).stream as stream:
        assert stream.read() == b"hello\n"
    download = repo.open(dir_at)
    assert download.directory and download.name == "model"
    with download.stream, tarfile.open(fileobj=io.BytesIO(download.stream.read()), mode="r:gz") as archive:
        names = set(archive.getnames())
    assert {"model", "model/empty", "model/latest", "model/sub/deeper/run.sh"} <= names


def test_retention_deletes_one_run_and_keeps_the_others(repo: ArtifactRepository, tmp_path: Path) -> None:
    source = tmp_path / "out.txt"
    source.write_text("x")
    one = repo.put(source, artifact_key(1, "a", 1, "out"))
    ten = repo.put(source, artifact_key(10, "a", 1, "out"))
    repo.delete_run(1)
    repo.delete_run(99)  # nothing stored: not an error
    assert not repo.holds(one) and repo.holds(ten)
    with pytest.raises(ArtifactError, match="not found"):
        repo.fetch(one, tmp_path / "late")


def test_holds_refuses_what_is_not_its_own(repo: ArtifactRepository, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.txt"
    outside.write_text("secret")
    assert not repo.holds(str(outside))
    assert not repo.holds("s3://another-bucket/1/a/1/out/x")
    assert not repo.holds("")


def test_s3_keys_are_run_scoped_and_a_directory_is_one_archive(s3: S3Server, tmp_path: Path) -> None:
    repo = open_repository(
        Settings(home=tmp_path / "home", artifact_repository=s3.url("keys"), artifact_s3_endpoint_url=s3.endpoint)
    )
    directory = make_directory(tmp_path)
    at = repo.put(directory, artifact_key(3, "train", 2, "model"))
    assert at == f"s3://{s3.bucket}/keys/3/train/2/model/model/"
    assert s3.keys("keys/") == [f"keys/3/train/2/model/model/{DIR_ARCHIVE}"]


def test_records_of_the_disk_repository_stay_readable_after_a_switch(s3: S3Server, tmp_path: Path) -> None:
    home = tmp_path / "home"
    source = tmp_path / "old.txt"
    source.write_text("from before")
    old = open_repository(Settings(home=home)).put(source, artifact_key(5, "a", 1, "out"))
    remote = open_repository(
        Settings(home=home, artifact_repository=s3.url("switch"), artifact_s3_endpoint_url=s3.endpoint)
    )
    assert isinstance(remote, RemoteArtifacts) and remote.holds(old)
    assert remote.fetch(old, tmp_path / "in").read_text() == "from before"
    remote.delete_run(5)
    assert not Path(old).exists()


def test_an_archive_reaching_outside_its_directory_is_refused(s3: S3Server, tmp_path: Path) -> None:
    repo = open_repository(
        Settings(home=tmp_path / "home", artifact_repository=s3.url("evil"), artifact_s3_endpoint_url=s3.endpoint)
    )
    assert isinstance(repo, RemoteArtifacts)
    for i, member in enumerate(("d/../../escaped.txt", "other/x.txt")):
        data = io.BytesIO()
        with tarfile.open(fileobj=data, mode="w:gz") as archive:
            info = tarfile.TarInfo(member)
            info.size = 3
            archive.addfile(info, io.BytesIO(b"bad"))
        s3.client().put_object(Bucket=s3.bucket, Key=f"evil/{i}/a/1/out/d/{DIR_ARCHIVE}", Body=data.getvalue())
        with pytest.raises(ArtifactError):
            repo.fetch(f"s3://{s3.bucket}/evil/{i}/a/1/out/d/", tmp_path / "in" / str(i))
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "in" / "1" / "other").exists()


def test_file_urls_and_bad_urls(tmp_path: Path) -> None:
    repo = open_repository(Settings(home=tmp_path, artifact_repository=f"file://{tmp_path}/shared"))
    assert isinstance(repo, LocalArtifacts) and repo.root == tmp_path / "shared"
    for bad in ("bucket/prefix", "s3://", "file://relative/path"):
        with pytest.raises(ValueError, match="MYAPP_ARTIFACT_REPOSITORY"):
            Settings(home=tmp_path, artifact_repository=bad)


def test_storing_a_key_again_never_leaves_a_reader_without_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A second store of one try's outputs (an attempt finished twice) while a consumer fetches them:
    the old file or directory is there until the new one replaces it (it was removed first before)."""
    from myapp.artifacts import repository
    from myapp.artifacts.repository import LocalArtifacts

    repo = LocalArtifacts(tmp_path / "artifacts")
    made = tmp_path / "made"
    (made / "tree" / "sub").mkdir(parents=True)
    (made / "shard-1.txt").write_text("old\n")
    (made / "tree" / "sub" / "a").write_text("old\n")
    file_at = repo.put(made / "shard-1.txt", artifact_key(2, "split", 1, "shards") + "/1")
    dir_at = repo.put(made / "tree", artifact_key(2, "split", 1, "model"))
    seen: list[bool] = []
    copy = repository._copy

    def copy_and_look(source: Path, target: Path) -> None:
        seen.append(Path(file_at).is_file() and Path(dir_at, "sub", "a").is_file())  # a reader's view meanwhile
        copy(source, target)
        seen.append(Path(file_at).is_file() and Path(dir_at, "sub", "a").is_file())

    monkeypatch.setattr(repository, "_copy", copy_and_look)
    (made / "shard-1.txt").write_text("new\n")
    (made / "tree" / "sub" / "a").write_text("new\n")
    assert repo.put(made / "shard-1.txt", artifact_key(2, "split", 1, "shards") + "/1") == file_at
    assert repo.put(made / "tree", artifact_key(2, "split", 1, "model")) == dir_at
    assert seen == [True] * 4
    assert Path(file_at).read_text() == "new\n" and Path(dir_at, "sub", "a").read_text() == "new\n"
    other = made / "renamed.txt"
    other.write_text("x")
    replaced = repo.put(other, artifact_key(2, "split", 1, "shards") + "/1")  # a lost attempt's other name goes
    assert not Path(file_at).exists() and [p.name for p in Path(replaced).parent.iterdir()] == ["renamed.txt"]
    assert sorted(p.name for p in (tmp_path / "artifacts" / "2" / "split" / "1").iterdir()) == ["model", "shards"]
