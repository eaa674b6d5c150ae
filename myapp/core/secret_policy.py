"""Which secrets and passwords are too weak to use: placeholders we ship, short or repetitive values.

Pure rules, used by settings (production mode), `myapp init` (the admin password) and the web
layer (FAB's password-complexity hook for new and changed passwords). Each check returns the
reason a value is refused, or None; callers name the setting or field. Must not import anything
that performs I/O.

The policy follows NIST SP 800-63B rather than composition rules: a minimum length, no value from
a list of known or shipped ones, not one character repeated, not the user's own name.
"""

from __future__ import annotations

import math
import re

# Values the repository ships as examples (docker/, config/, docs, README) or that every scanner
# tries first. Compared case-insensitively; anything containing a CHANGE-ME marker is refused too.
PLACEHOLDERS = frozenset(
    {
        "change-me",
        "changeme",
        "change_me",
        "change-me-to-a-long-random-string",
        "change-me-to-a-long-random-string-of-64-characters-or-more-please",
        "myapp",
        "admin",
        "admin-pass",
        "password",
        "passw0rd",
        "secret",
        "secret-key",
        "secret_key",
        "test-secret-key-of-at-least-32-bytes!!",
        "bench-pass",
        "postgres",
        "root",
        "guest",
        "default",
        "123456",
        "12345678",
        "123456789",
        "1234567890",
        "qwerty",
        "qwerty123",
        "letmein",
        "welcome",
        "administrator",
        "password1",
        "password123",
        "iloveyou",
        "abc123",
        "111111",
        "000000",
    }
)
# The passwords our own files suggest (docker/, docs): an existing admin still using one is refused
# at start in production. Few on purpose: each check costs a password-hash computation.
SHIPPED_PASSWORDS = ("change-me", "CHANGE-ME", "changeme", "admin", "password", "myapp")
PLACEHOLDER_MARKER = re.compile(
    r"change[-_ ]?me|replace[-_ ]?me|your[-_ ]?(secret|password)|<[^>]*>|\.\.\.", re.IGNORECASE
)
REPEATED = re.compile(r"(.+?)\1+", re.DOTALL)
SECRET_KEY_MIN_LENGTH = 32
SECRET_KEY_MIN_BITS = 128
MIN_DISTINCT = 5


def placeholder_reason(value: str) -> str | None:
    """Return why `value` is a shipped or well-known placeholder, or None."""
    if value.strip().lower() in PLACEHOLDERS:
        return "is a placeholder or well-known value"
    if PLACEHOLDER_MARKER.search(value):
        return "is a placeholder (it says to change it)"
    return None


def estimated_bits(value: str) -> float:
    """Return a rough upper bound of the value's entropy: length x log2(size of the alphabets it uses)."""
    alphabet = 0
    for chars, size in ((str.islower, 26), (str.isupper, 26), (str.isdigit, 10)):
        if any(chars(c) for c in value):
            alphabet += size
    if any(not c.isalnum() for c in value):
        alphabet += 33
    return len(value) * math.log2(alphabet) if alphabet > 1 else 0.0


def password_problem(password: str, *, min_length: int, username: str = "") -> str | None:
    """Return why `password` may not be used (new or changed passwords, the admin's), or None."""
    reason = placeholder_reason(password)
    if reason:
        return reason
    if len(password) < min_length:
        return f"must be at least {min_length} characters long"
    if len(set(password)) < MIN_DISTINCT:
        return f"must use at least {MIN_DISTINCT} different characters"
    if username and username.lower() in password.lower():
        return "must not contain the user name"
    return None


def secret_key_problem(key: str) -> str | None:
    """Return why `key` is unfit to sign sessions and tokens, or None."""
    reason = placeholder_reason(key)
    if reason:
        return reason
    if len(key) < SECRET_KEY_MIN_LENGTH:
        return (
            f"must be at least {SECRET_KEY_MIN_LENGTH} characters long (e.g. `python3 -c 'import secrets; "
            "print(secrets.token_hex(32))'`)"
        )
    if len(set(key)) < 10 or REPEATED.fullmatch(key):
        return "repeats a few characters or a short pattern; use a random value"
    if estimated_bits(key) < SECRET_KEY_MIN_BITS:
        return f"is too predictable (about {estimated_bits(key):.0f} bits; at least {SECRET_KEY_MIN_BITS} needed)"
    return None
