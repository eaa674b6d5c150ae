"""The sandbox's bounds (issue 13 B5): render bombs fail fast with a clear message; a budget stops on time or cancel."""

from __future__ import annotations

import re

import pytest
from jinja2.exceptions import SecurityError

from myapp.core.sandbox import Budget, RenderCancelled, render_bounded, render_budget, weight
from tests.work import calls_made

BOMBS = {
    # issue 13: `([a]*1000)|join` doubling reached a 1e9-character string in the worker
    "join doubling": "{% set a = 'x' * 100000 %}{% set a = ([a]*1000)|join %}{% set a = ([a]*1000)|join %}{{ a|length }}",
    "concat doubling": "{% set a = 'x' * 600000 %}{% set a = a ~ a %}{% set a = a ~ a %}{{ a|length }}",
    "plus doubling": "{% set a = 'x' * 600000 %}{% set a = a + a %}{{ a|length }}",
    # issue 13: `([a]*30000)|map('upper')` rendered 56 s
    "map over repeats": "{% set a = 'x' * 10000 %}{{ ([a]*30000)|map('upper')|join }}",
    "map lazily": "{% set a = 'x' * 999 %}{{ [a, a, a, a, a, a, a, a, a, a]|map('upper')|map('upper')|list|length }}"
    "{% set b = 'y' * 900000 %}{{ [b, b]|map('upper')|join }}",
    "list of refs printed": "{% set a = 'x' * 900000 %}{{ [a, a, a] }}",
    "list of refs as string": "{% set a = 'x' * 900000 %}{{ [a, a]|string|length }}",
    "sum of lists": "{{ ([[1]*1000]*999)|sum(start=[])|length }}",
    "str join method": "{% set a = 'x' * 900000 %}{{ ''.join([a, a]) }}",
    "percent format": "{% set a = 'x' * 900000 %}{{ '%s%s' % (a, a) }}",
    "format method": "{% set a = 'x' * 900000 %}{{ '{0}{0}'.format(a) }}",
    "batch fill": "{{ [1]|batch(100000000, 'x')|list }}",
    "tojson indent": "{{ [1, 2]|tojson(indent=100000000) }}",
    "macro output": "{% macro m(a) %}{{ a }}{{ a }}{% endmacro %}{% set a = 'x' * 900000 %}{{ m(a)|length }}",
    "exponential macro": "{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(30) }}",
    "block set": "{% set a = 'x' * 900000 %}{% set b %}{{ a }}{{ a }}{% endset %}{{ b|length }}",
}


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_render_bombs_fail_fast_with_a_clear_message(name: str) -> None:
    # The budget's clock never moves, so the wall-time limit cannot be what stops a bomb: each is
    # bounded by counted operations and sizes, on any machine (no timing assertion).
    with render_budget(Budget(clock=lambda: 0.0)), pytest.raises(SecurityError) as info:
        render_bounded(BOMBS[name], {})
    assert not re.search(r"longer than [0-9.]+ s", str(info.value)), str(info.value)
    assert any(
        word in str(info.value)
        for word in (
            "larger than",
            "longer than",
            "limited to",
            "operations",
            "repetition",
            "built more than",
            "given more than",
        )
    ), str(info.value)


def test_ordinary_templates_still_render() -> None:
    text = (
        "{% set parts = ['a', 'b', 'c'] %}{{ parts|join('-') }} {{ 'x' ~ 1 ~ 'y' }} {{ (parts|map('upper')|list)[1] }} "
        "{{ '%05d' % 42 }} {{ '{}-{}'.format(1, 2) }} {{ [1, 2, 3]|sum }} {{ 'ab' * 3 }} "
        "{% for p in parts %}{{ loop.index }}{% endfor %} {{ {'k': 'v'}|tojson }} {{ 2 ** 10 }}"
    )
    assert render_bounded(text, {}) == 'a-b-c x1y B 00042 1-2 6 ababab 123 {"k": "v"} 1024'


def test_a_budget_is_shared_and_stops_on_cancel_and_on_time() -> None:
    loop = "{% set s = 'x' * 300 %}{% for a in s %}{% for b in s %}{{ a }}{% endfor %}{% endfor %}"
    with render_budget(Budget(cancelled=lambda: True)), pytest.raises(RenderCancelled):
        render_bounded(loop, {})
    ticks = iter(range(10**9))
    with render_budget(Budget(seconds=5, clock=lambda: float(next(ticks)))), pytest.raises(SecurityError) as info:
        render_bounded(loop, {})
    assert "longer than 5 s" in str(info.value)
    with render_budget(Budget()) as budget:
        render_bounded(loop, {})
        with pytest.raises(SecurityError, match="iterations"):  # 90,000 + 90,000 steps > 100,000 in one budget
            render_bounded(loop, {})
    assert budget.loop_steps > 100_000


def test_weight_counts_nested_text_and_stops_early() -> None:
    a = "x" * 1000
    assert weight([a, [a, {"k": a}]]) == 3 * 1000 + 1 + 1 + 1 + 1  # three lists/dicts and the key
    # A million strings of 1000 characters: counting stops past the limit after about a thousand
    # of them (3,014 calls today), instead of visiting all (work counted, not timed).
    total, calls = calls_made(weight, [[a] * 1000] * 1000)
    assert total > 1_000_000
    assert calls < 10_000
