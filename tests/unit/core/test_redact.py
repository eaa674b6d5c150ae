"""Secret values are masked in log text."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from myapp.core.params import MASK
from myapp.core.redact import NO_SECRETS, Redactor


def test_every_occurrence_is_masked() -> None:
    r = Redactor(["s3cr3t-token", "hunter22"])
    assert r("token=s3cr3t-token and again s3cr3t-token; pw hunter22") == f"token={MASK} and again {MASK}; pw {MASK}"


def test_longest_secret_wins_when_one_contains_another() -> None:
    r = Redactor(["abcd", "abcd-efgh"])
    assert r("x abcd-efgh y abcd z") == f"x {MASK} y {MASK} z"


def test_regex_characters_in_a_secret_are_literal() -> None:
    r = Redactor(["a.b*c(d)"])
    assert r("a.b*c(d) axbbbcd") == f"{MASK} axbbbcd"


def test_short_and_empty_values_are_not_masked() -> None:
    r = Redactor(["", "yes", "1"])
    assert not r
    assert r("yes 1") == "yes 1"
    assert NO_SECRETS("anything") == "anything"


def test_multi_line_secret_is_masked_line_by_line() -> None:
    key = "-----BEGIN KEY-----\nMIIBOgIBAAJBAK\n-----END KEY-----"
    r = Redactor([key])
    for line in key.splitlines():
        assert r(f"printed: {line}") == f"printed: {MASK}"


@given(
    st.text(min_size=4, max_size=40).filter(
        lambda s: len(s.strip()) >= 4 and not set(s) & set("*\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
    ),
    st.text(max_size=40),
    st.text(max_size=40),
)
def test_a_secret_never_survives(secret: str, before: str, after: str) -> None:
    assert secret not in Redactor([secret])(before + secret + after)
