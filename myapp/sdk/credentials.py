"""The sign-in `myapp login` keeps for the SDK: a server URL and its access and refresh tokens.

One JSON file, readable by its owner only: MYAPP_CREDENTIALS, default ~/.myapp/credentials.json.
No password is stored; the refresh token (valid `jwt_refresh_hours`, 12 by default) gets new
access tokens, and `myapp logout` revokes the sign-in on the server before deleting the file.
Standard library only.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class Credentials:
    """A signed-in server."""

    url: str
    username: str
    access_token: str
    refresh_token: str


def credentials_path(environ: Mapping[str, str] | None = None) -> Path:
    """Return where the sign-in is kept (MYAPP_CREDENTIALS, default ~/.myapp/credentials.json)."""
    env = os.environ if environ is None else environ
    given = env.get("MYAPP_CREDENTIALS", "").strip()
    return Path(given).expanduser() if given else Path.home() / ".myapp" / "credentials.json"


def load_credentials(path: Path) -> Credentials | None:
    """Return the kept sign-in, or None when there is none (or the file is not one)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Credentials(**{k: str(data[k]) for k in ("url", "username", "access_token", "refresh_token")})
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save_credentials(path: Path, credentials: Credentials) -> None:
    """Write the sign-in, readable and writable by its owner only (created so, never widened)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(asdict(credentials), handle)
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)
