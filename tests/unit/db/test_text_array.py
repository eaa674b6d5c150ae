"""The text array literal a fast finish binds its task names with (AttemptStore._release_plan)."""

from __future__ import annotations

import pytest

from myapp.db.attempt_store import _text_array


@pytest.mark.parametrize(
    ("names", "literal"),
    [
        ((), "{}"),
        (("a",), '{"a"}'),
        (("a", "train[3]", "a,b", "{}", "NULL", "x y"), '{"a","train[3]","a,b","{}","NULL","x y"}'),
        (('say "hi"', "back\\slash"), '{"say \\"hi\\"","back\\\\slash"}'),
    ],
)
def test_names_are_quoted_and_escaped(names: tuple[str, ...], literal: str) -> None:
    assert _text_array(names) == literal
