"""Mask secret values in text that people will read (task logs), as Airflow's secrets masker does.

A task receives its secret parameters and its run token through the environment; if it prints
them, the log must not keep them. Every occurrence of a known secret value is replaced by MASK
before a line is published or archived. Values shorter than MIN_LENGTH are not masked: masking
"1" or "yes" everywhere would make every log unreadable and hide nothing worth hiding. A secret
spanning several lines is masked line by line, since logs are written a line at a time.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from myapp.core.params import MASK

MIN_LENGTH = 4


class Redactor:
    """Replace known secret values in text with MASK; a Redactor of no secrets returns text unchanged."""

    def __init__(self, secrets: Iterable[str], *, min_length: int = MIN_LENGTH) -> None:
        parts = {piece for value in secrets if value
                 for piece in [value, *value.splitlines()] if len(piece.strip()) >= min_length}
        # Longest first, so a secret that contains another is masked whole.
        ordered = sorted(parts, key=lambda p: (-len(p), p))
        self._pattern = re.compile("|".join(re.escape(p) for p in ordered)) if ordered else None

    def __bool__(self) -> bool:
        return self._pattern is not None

    def __call__(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(MASK, text)


NO_SECRETS = Redactor(())
