"""Secrets at rest (issue 13 B6): values sealed with Fernet inside JSON columns, opened on read.

A secret value is stored as the text `myapp-sealed:v1:<Fernet token>` in place of the value, in
pipeline versions (secret parameter defaults, secret template arguments), runs (values of secret
parameters) and templates (secret defaults). Who writes a row seals what it knows to be secret
(myapp/core/secrets.py); every read of those columns opens any sealed text it finds, whatever the
row (SealedJson), so the rest of the code sees plain values.

Keys: `secrets_keys` (comma-separated Fernet keys; the first seals, all open: MultiFernet), or,
when empty, one key derived from the secret key. Rotation: put a new key first, run
`myapp secrets rotate` (re-seals every stored secret with it, and seals any stored before this
version in plain text), then drop the old key (docs/security.md §5).
"""

from __future__ import annotations

import base64
import hashlib
import threading
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import JSON
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from myapp.core.errors import MyappError

PREFIX = "myapp-sealed:v1:"


class SealError(MyappError):
    """A sealed value cannot be opened with the configured keys."""


class Keyring:
    """The Fernet keys of this process: the first seals, every one opens (kept from every configure call)."""

    def __init__(self) -> None:
        self._keys: list[bytes] = []
        self._lock = threading.Lock()
        self._fernet: Any = None

    def configure(self, keys: Sequence[bytes]) -> None:
        """Seal with keys[0] from now on; open with these and every key configured before."""
        with self._lock:
            self._keys = list(dict.fromkeys([*keys, *self._keys]))
            self._fernet = None  # built on first use: a process that meets no secret never loads cryptography

    def _cipher(self) -> Any:
        with self._lock:
            if self._fernet is None and self._keys:
                from cryptography.fernet import Fernet, MultiFernet

                self._fernet = MultiFernet([Fernet(k) for k in self._keys])
            return self._fernet

    def seal(self, text: str) -> str:
        if text.startswith(PREFIX):
            return text
        cipher = self._cipher()
        if cipher is None:
            raise SealError("no key to seal secrets with (configure MYAPP_SECRET_KEY or MYAPP_SECRETS_KEYS)")
        return PREFIX + str(cipher.encrypt(text.encode()).decode())

    def open(self, text: str) -> str:
        if not text.startswith(PREFIX):
            return text
        cipher = self._cipher()
        if cipher is None:
            raise SealError("a stored secret is sealed, and no key is configured to open it")
        from cryptography.fernet import InvalidToken

        try:
            return str(cipher.decrypt(text[len(PREFIX) :].encode()).decode())
        except InvalidToken:
            raise SealError(
                "a stored secret was sealed with a key that is not in MYAPP_SECRETS_KEYS "
                "(or MYAPP_SECRET_KEY changed); add the old key after the new one"
            ) from None

    def reseal(self, text: str) -> str:
        """Return `text` sealed with the first key (opening it first if sealed with another)."""
        return self.seal(self.open(text))


KEYRING = Keyring()


def derive_key(secret_key: str) -> bytes:
    """Return the Fernet key derived from the secret key (used when no secrets_keys are configured)."""
    digest = hashlib.sha256(b"myapp secrets at rest\0" + secret_key.encode()).digest()
    return base64.urlsafe_b64encode(digest)


def keys_from_settings(secrets_keys: str, secret_key: str) -> list[bytes]:
    """Return the configured Fernet keys (first seals), or the one derived from the secret key."""
    keys = [k.strip().encode() for k in secrets_keys.split(",") if k.strip()]
    return keys or [derive_key(secret_key)]


def seal(text: str) -> str:
    return KEYRING.seal(text)


def open_tree(value: Any) -> Any:
    """Return `value` (JSON data) with every sealed text in it opened; unchanged objects are returned as is."""
    if isinstance(value, str):
        return KEYRING.open(value) if value.startswith(PREFIX) else value
    if isinstance(value, dict):
        if not _has_sealed(value.values()):
            return value
        return {k: open_tree(v) for k, v in value.items()}
    if isinstance(value, list):
        if not _has_sealed(value):
            return value
        return [open_tree(v) for v in value]
    return value


def mask_sealed(value: Any, mask: str = "******") -> Any:
    """Return `value` (JSON data) with every sealed text replaced by `mask` (what views show)."""
    if isinstance(value, str):
        return mask if value.startswith(PREFIX) else value
    if isinstance(value, dict):
        return {k: mask_sealed(v, mask) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_sealed(v, mask) for v in value]
    return value


def _has_sealed(items: Iterable[Any]) -> bool:
    for item in items:
        if isinstance(item, str):
            if item.startswith(PREFIX):
                return True
        elif isinstance(item, (dict, list)) and _has_sealed(item.values() if isinstance(item, dict) else item):
            return True
    return False


class SealedJson(TypeDecorator[Any]):
    """A JSON column whose sealed texts are opened when read (written as given: the writer seals)."""

    impl = JSON
    cache_ok = True

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        return open_tree(value)
