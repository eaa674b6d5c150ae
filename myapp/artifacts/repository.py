"""Artifact repositories (myapp.core.ports.ArtifactRepository): this machine's disk (`file://`, the
default) or any fsspec filesystem, S3 and MinIO through s3fs (`s3://bucket/prefix`, extra `[s3]`).

Both keep an attempt's file output at ROOT/RUN/TASK/TRY/OUTPUT/NAME (core.output_paths.artifact_key),
NAME being the file's or the directory's own name. On disk a directory is copied as it is. In a
remote store a file is one object and a directory is one gzipped tar, ROOT/.../NAME/.myapp-tree.tar.gz,
holding NAME/ with its relative names, bytes, modes, empty subdirectories and symbolic links (kept
as links, never followed), as Argo archives directories; the directory's location is its URL with a
trailing slash. A location without a scheme is a path on disk: outputs recorded by the file://
repository stay readable after a switch to s3://. Decision: docs/decisions/0011-artifact-repository.md.
Imports core and settings only; fsspec (and s3fs) are loaded on the first remote transfer.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
import tarfile
import tempfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from myapp.core.errors import ArtifactError
from myapp.core.ports import ArtifactDownload, ArtifactRepository
from myapp.settings import Settings

DIR_ARCHIVE = ".myapp-tree.tar.gz"
SPOOL = 16 * 1024 * 1024  # a directory's download archive stays in memory up to this size, then on disk


class LocalArtifacts:
    """Artifacts on this machine's disk under `root` (the default: MYAPP_HOME/artifacts)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, source: Path, key: str) -> str:
        """Copy `source` to ROOT/KEY/NAME (replacing what an earlier store of the same key left); return its path.

        The copy is made beside ROOT/KEY and moved in by rename: a reader of an artifact stored before
        (a consumer fetching it while the outputs of the same try are stored again, e.g. by a second
        finish of the attempt) finds the old file or the new one, never none. A directory replacing a
        directory is swapped by two renames, so only that swap's microseconds see neither.
        """
        target = self.root / key / (source.name or PurePosixPath(key).name)
        home = target.parent
        home.parent.mkdir(parents=True, exist_ok=True)
        staged = home.with_name(f".{home.name}.put-{secrets.token_hex(4)}")
        staged.mkdir()
        try:
            _copy(source, staged / target.name)
            try:
                os.rename(staged, home)  # the first store (or over an empty directory)
                return str(target)
            except OSError as exc:
                if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise
            for old in home.iterdir():  # what an earlier store left under another name
                if old.name != target.name:
                    _remove(old)
            new = staged / target.name
            if new.is_dir() and not new.is_symlink() and (target.is_dir() and not target.is_symlink()):
                trash = home / f".{target.name}.old-{secrets.token_hex(4)}"
                os.rename(target, trash)
                os.rename(new, target)
                _remove(trash)
            else:
                if target.is_dir() and not target.is_symlink():
                    _remove(target)
                os.replace(new, target)  # atomic: the old file until the new one is there
        finally:
            shutil.rmtree(staged, ignore_errors=True)
        return str(target)

    def fetch(self, location: str, target_dir: Path) -> Path:
        """Copy the artifact at path `location` into `target_dir`; return the copy's path."""
        source = Path(location)
        if not source.exists():
            raise ArtifactError(
                f"artifact {location} not found: deleted by retention, or kept on another "
                "machine's disk (set artifact_repository to a store every worker reaches)"
            )
        target_dir.mkdir(parents=True, exist_ok=True)
        target = target_dir / source.name
        _copy(source, target)
        return target

    def holds(self, location: str) -> bool:
        """Return True for an existing path inside the root (links resolved first)."""
        if "://" in location or not location:
            return False
        real, root = Path(location).resolve(), self.root.resolve()
        return root in real.parents and real.exists()

    def open(self, location: str) -> ArtifactDownload:
        """Open a file, or a gzipped tar of a directory (links archived as links)."""
        path = Path(location).resolve()
        if not path.is_dir():
            return ArtifactDownload(path.name, False, path.open("rb"))
        spool: Any = tempfile.SpooledTemporaryFile(max_size=SPOOL)
        with tarfile.open(fileobj=spool, mode="w:gz") as archive:
            archive.add(path, arcname=path.name)
        spool.seek(0)
        return ArtifactDownload(path.name, True, spool)

    def delete_run(self, run_id: int) -> None:
        """Remove the run's directory of artifacts."""
        shutil.rmtree(self.root / str(run_id), ignore_errors=True)


class RemoteArtifacts:
    """Artifacts in an fsspec filesystem at `url` (s3://bucket/prefix); the filesystem is made on first use."""

    def __init__(self, url: str, options: Mapping[str, Any], local: LocalArtifacts) -> None:
        protocol, _, rest = url.partition("://")
        self.protocol, self.root = protocol, rest.strip("/")
        self.url = f"{protocol}://{self.root}"
        self.options, self.local = dict(options), local
        self._fs: Any = None

    @property
    def fs(self) -> Any:
        """Return the fsspec filesystem (ArtifactError when its package is not installed)."""
        if self._fs is None:
            try:
                import fsspec

                self._fs = fsspec.filesystem(self.protocol, **self.options)
            except (ImportError, ValueError) as exc:
                raise ArtifactError(
                    f"artifact_repository {self.url}: cannot open the {self.protocol}:// store "
                    f"({exc}); for S3 or MinIO install myapp[s3]"
                ) from None
        return self._fs

    def put(self, source: Path, key: str) -> str:
        """Upload `source` (a directory as one archive); return its URL."""
        name = source.name or PurePosixPath(key).name
        base = f"{self.root}/{key}/{name}"
        try:
            if not source.is_dir():
                self.fs.put_file(str(source), base)
                return f"{self.protocol}://{base}"
            with tempfile.TemporaryDirectory(prefix="myapp-artifact-") as tmp:
                archive = Path(tmp) / DIR_ARCHIVE
                with tarfile.open(archive, "w:gz") as tar:
                    tar.add(source, arcname=name)  # links archived as links (dereference=False)
                self.fs.put_file(str(archive), f"{base}/{DIR_ARCHIVE}")
            return f"{self.protocol}://{base}/"
        except ArtifactError:
            raise
        except Exception as exc:  # noqa: BLE001  s3fs, botocore and aiohttp raise their own kinds
            raise ArtifactError(f"storing {source.name!r} at {self.protocol}://{base} failed: {exc}") from exc

    def fetch(self, location: str, target_dir: Path) -> Path:
        """Download the artifact at `location` into `target_dir` (a directory unpacked); return its path."""
        if "://" not in location:
            return self.local.fetch(location, target_dir)
        path, directory, name = self._parse(location)
        target_dir.mkdir(parents=True, exist_ok=True)
        target = target_dir / name
        try:
            if not directory:
                self.fs.get_file(path, str(target))
                return target
            with self.fs.open(path + DIR_ARCHIVE, "rb") as stream, _OwnTar.open(fileobj=stream, mode="r|gz") as tar:
                for member in tar:
                    if member.name != name and not member.name.startswith(name + "/"):
                        raise ArtifactError(f"artifact {location}: the archive holds {member.name!r}, outside {name!r}")
                    tar.extract(member, target_dir, filter="tar")  # never writes outside target_dir
            return target
        except ArtifactError:
            raise
        except FileNotFoundError:
            raise ArtifactError(f"artifact {location} not found (deleted by retention?)") from None
        except Exception as exc:  # noqa: BLE001
            raise ArtifactError(f"fetching artifact {location} failed: {exc}") from exc

    def holds(self, location: str) -> bool:
        """Return True for an existing artifact under this repository's URL (or the local root)."""
        if "://" not in location:
            return self.local.holds(location)
        if not location.startswith(self.url + "/") or "/../" in location or location.endswith("/.."):
            return False
        path, directory, _ = self._parse(location)
        try:
            return bool(self.fs.exists(path + DIR_ARCHIVE if directory else path))
        except Exception as exc:  # noqa: BLE001  unreachable, refused credentials: not "absent"
            raise ArtifactError(f"the artifact repository {self.url} cannot be read: {exc}") from exc

    def open(self, location: str) -> ArtifactDownload:
        """Open a stored object for reading: the file, or the directory's archive."""
        if "://" not in location:
            return self.local.open(location)
        path, directory, name = self._parse(location)
        try:
            return ArtifactDownload(name, directory, self.fs.open(path + DIR_ARCHIVE if directory else path, "rb"))
        except Exception as exc:  # noqa: BLE001
            raise ArtifactError(f"the artifact repository {self.url} cannot be read: {exc}") from exc

    def delete_run(self, run_id: int) -> None:
        """Delete every object under ROOT/RUN/ (and a local directory left from file://)."""
        try:
            self.fs.rm(f"{self.root}/{run_id}/", recursive=True)
        except FileNotFoundError:
            pass
        self.local.delete_run(run_id)

    def presign(self, path: str, method: str, seconds: int) -> str:
        """Return a URL granting `method` (GET or PUT) on the one object `path` (BUCKET/KEY) for
        `seconds`, signed with this process's credentials (pods that move their own files,
        myapp/k8s/transfer.py). S3 only; no request is made."""
        if self.protocol not in ("s3", "s3a"):
            raise ArtifactError(f"artifact_repository {self.url}: only s3:// can sign URLs for pods")
        bucket, _, key = path.partition("/")
        try:
            import botocore.session
            from botocore.config import Config

            client_kwargs = dict(self.options.get("client_kwargs") or {})
            style = {"s3": {"addressing_style": "path"}} if client_kwargs.get("endpoint_url") else {}
            client = botocore.session.get_session().create_client(
                "s3", config=Config(signature_version="s3v4", **style), **client_kwargs
            )
            operation = {"GET": "get_object", "PUT": "put_object"}[method]
            return str(
                client.generate_presigned_url(operation, Params={"Bucket": bucket, "Key": key}, ExpiresIn=seconds)
            )
        except Exception as exc:  # noqa: BLE001  no credentials, no botocore
            raise ArtifactError(f"artifact_repository {self.url}: cannot sign a URL for {path}: {exc}") from exc

    def object_path(self, location: str) -> str:
        """Return BUCKET/KEY of the object holding the artifact at `location` (a directory's archive)."""
        path, directory, _ = self._parse(location)
        return path + DIR_ARCHIVE if directory else path

    def _parse(self, location: str) -> tuple[str, bool, str]:
        """Return (path in the filesystem, is a directory, name) of a remote location."""
        path = location.split("://", 1)[1]
        return path, path.endswith("/"), PurePosixPath(path.rstrip("/")).name


class _OwnTar(tarfile.TarFile):
    """Extracts as the extracting process's own files: the uid recorded in an archive (a task
    account's) is never given to what a root worker unpacks."""

    def chown(self, tarinfo: tarfile.TarInfo, targetpath: Any, numeric_owner: bool) -> None:
        return None


def open_repository(settings: Settings) -> ArtifactRepository:
    """Return the repository of `settings.artifact_repository` (empty: MYAPP_HOME/artifacts on disk)."""
    local = LocalArtifacts(settings.artifacts_dir)
    url = settings.artifact_repository.strip()
    if not url:
        return local
    if url.startswith("file://"):
        return LocalArtifacts(Path(url[len("file://") :]))
    options: dict[str, Any] = {}
    if url.startswith(("s3://", "s3a://")):
        client: dict[str, str] = {}
        if settings.artifact_s3_endpoint_url:
            client["endpoint_url"] = settings.artifact_s3_endpoint_url
        if settings.artifact_s3_region:
            client["region_name"] = settings.artifact_s3_region
        if client:
            options["client_kwargs"] = client
    return RemoteArtifacts(url, options, local)


def _remove(path: Path) -> None:
    """Remove a file, link or directory tree; one gone meanwhile (a store of the same key at once) is fine."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except FileNotFoundError:
        pass


def _copy(source: Path, target: Path) -> None:
    if source.is_dir():
        shutil.copytree(source, target, symlinks=True, dirs_exist_ok=True)
    else:
        shutil.copy2(source, target)
