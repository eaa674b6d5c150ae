"""Mask secret values in text that people will read (task logs), as Airflow's secrets masker does.

A task receives its secret parameters and its run token through the environment; if it prints
them, the log must not keep them. Every occurrence of a known secret value is replaced by MASK
before a line is published or archived. Values shorter than MIN_LENGTH are not masked: masking
"1" or "yes" everywhere would make every log unreadable and hide nothing worth hiding. A secret
spanning several lines is masked line by line, since logs are written a line at a time.

A task can print a secret encoded rather than as it is (issue 13 B7): each secret is also masked
in its base64 forms (standard and URL-safe, at each of the three alignments it can take inside a
longer base64 text, so `base64` of "prefix+secret" is caught too), lower- and upper-case hex, and
URL-encoded forms (`%2F` and `+`-for-space). Other transformations (reversed, split, encrypted) are
not recognised: what a task's code may do with a secret it holds is bounded by who may write tasks
(docs/security.md §6).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

from myapp.core.params import MASK

MIN_LENGTH = 4


class Redactor:
    """Replace known secret values in text with MASK; a Redactor of no secrets returns text unchanged."""

    def __init__(self, secrets: Iterable[str], *, min_length: int = MIN_LENGTH) -> None:
        plain = {
            piece
            for value in secrets
            if value
            for piece in [value, *value.splitlines()]
            if len(piece.strip()) >= min_length
        }
        parts = {form for piece in plain for form in encoded_forms(piece) if len(form) >= min_length} | plain
        # Longest first, so a secret that contains another is masked whole.
        ordered = sorted(parts, key=lambda p: (-len(p), p))
        self._pattern = re.compile("|".join(re.escape(p) for p in ordered)) if ordered else None

    def __bool__(self) -> bool:
        return self._pattern is not None

    def __call__(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(MASK, text)


def encoded_forms(secret: str) -> set[str]:
    """Return the texts `secret` becomes when a task encodes it: base64 (3 alignments, 2 alphabets), hex, URL."""
    raw = secret.encode()
    forms = {raw.hex(), raw.hex().upper(), quote(secret, safe=""), quote_plus(secret, safe="")}
    for shift in range(3):
        # `shift` bytes before the secret: the characters that encode only the secret's own bytes.
        text = base64.b64encode(bytes(shift) + raw + bytes(2)).decode()
        start = (shift * 4 + 2) // 3
        end = ((shift + len(raw)) * 4) // 3
        core = text[start:end]
        forms |= {core, core.replace("+", "-").replace("/", "_")}
    forms |= {base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()}
    return {form for form in forms if form != secret}


NO_SECRETS = Redactor(())
