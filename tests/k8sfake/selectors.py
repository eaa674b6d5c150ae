"""Label and field selectors, parsed and matched like apimachinery does.

Label grammar: `k`, `!k`, `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`,
`k>1`, `k<1`, comma-separated (all must hold). Field grammar: `f=v`, `f==v`,
`f!=v`, comma-separated, with `\\,` `\\=` `\\\\` escapes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from tests.k8sfake.errors import bad_request
from tests.k8sfake.meta import JsonObj, labels_of

_SPECIAL = ("!=", "==", "=", "!", "(", ")", ",", "<", ">")
_TOKEN = re.compile(r"\s*(!=|==|=|!|\(|\)|,|<|>|[^\s!=(),<>]+)")


@dataclass(frozen=True)
class Requirement:
    """One label requirement: key, operator and values."""

    key: str
    op: str  # exists | !exists | = | != | in | notin | > | <
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Return whether `labels` satisfy this requirement."""
        has = self.key in labels
        value = labels.get(self.key, "")
        if self.op == "exists":
            return has
        if self.op == "!exists":
            return not has
        if self.op in ("=", "in"):
            return has and value in self.values
        if self.op in ("!=", "notin"):
            return not has or value not in self.values
        if not has or not re.fullmatch(r"-?\d+", value):
            return False
        bound = int(self.values[0])
        return int(value) > bound if self.op == ">" else int(value) < bound


@dataclass(frozen=True)
class LabelSelector:
    """A parsed label selector; the empty selector matches everything."""

    requirements: tuple[Requirement, ...] = ()

    def matches(self, obj: JsonObj) -> bool:
        """Return whether the object's labels satisfy every requirement."""
        labels = labels_of(obj)
        return all(r.matches(labels) for r in self.requirements)


def _tokens(text: str) -> list[str]:
    tokens = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            break
        tokens.append(match.group(1))
        position = match.end()
        if text[position:].strip() == "":
            break
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.position = 0

    def peek(self) -> str | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> str | None:
        token = self.peek()
        self.position += 1
        return token

    def identifier(self, expected: str) -> str:
        token = self.take()
        if token is None or token in _SPECIAL:
            raise bad_request(f"unable to parse requirement: found '{token or ''}', expected: {expected}")
        return token

    def requirement(self) -> Requirement:
        if self.peek() == "!":
            self.take()
            return Requirement(self.identifier("identifier after '!'"), "!exists")
        key = self.identifier("identifier")
        op = self.peek()
        if op is None or op == ",":
            return Requirement(key, "exists")
        self.take()
        if op in ("=", "==", "!="):
            value = "" if self.peek() in (None, ",") else self.identifier("identifier")
            return Requirement(key, "!=" if op == "!=" else "=", (value,))
        if op in (">", "<"):
            value = self.identifier("integer")
            if not re.fullmatch(r"-?\d+", value):
                raise bad_request(
                    f"unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer: {value}"
                )
            return Requirement(key, op, (value,))
        if op in ("in", "notin"):
            return Requirement(key, op, self.value_set())
        raise bad_request(f"unable to parse requirement: found '{op}', expected: in, notin, =, ==, !=, gt, lt")

    def value_set(self) -> tuple[str, ...]:
        if self.take() != "(":
            raise bad_request("unable to parse requirement: found '', expected: '('")
        values: list[str] = []
        while True:
            token = self.peek()
            if token == ")" and not values:
                raise bad_request("unable to parse requirement: for 'in', 'notin' operators, values set can't be empty")
            values.append("" if token in (",", ")") else self.identifier("identifier"))
            closing = self.take()
            if closing == ")":
                return tuple(values)
            if closing != ",":
                raise bad_request(f"unable to parse requirement: found '{closing or ''}', expected: ',', ')'")


def parse_label_selector(text: str | None) -> LabelSelector:
    """Parse a labelSelector query value; raise a 400 StatusError when malformed."""
    if not text or not text.strip():
        return LabelSelector()
    parser = _Parser(text)
    requirements = []
    while True:
        requirements.append(parser.requirement())
        token = parser.take()
        if token is None:
            return LabelSelector(tuple(requirements))
        if token != ",":
            raise bad_request(f"unable to parse requirement: found '{token}', expected: ','")


FieldGetter = Callable[[JsonObj], str]


@dataclass(frozen=True)
class FieldSelector:
    """A parsed field selector: (field, equals?, value) terms."""

    terms: tuple[tuple[str, bool, str], ...] = ()

    def fields(self) -> list[str]:
        """Return the field labels the selector uses."""
        return [field for field, _, _ in self.terms]

    def matches(self, obj: JsonObj, getters: Mapping[str, FieldGetter]) -> bool:
        """Return whether `obj` satisfies every term."""
        return all((getters[field](obj) == value) == equals for field, equals, value in self.terms)


def _split_unescaped(text: str, separator: str) -> list[str]:
    parts, current, escaped = [], "", False
    for char in text:
        if escaped:
            current += "\\" + char
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == separator:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return parts


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)


def parse_field_selector(text: str | None, supported: Mapping[str, FieldGetter]) -> FieldSelector:
    """Parse a fieldSelector; raise 400 for bad syntax or an unsupported field label."""
    if not text or not text.strip():
        return FieldSelector()
    terms = []
    for part in _split_unescaped(text, ","):
        for op in ("!=", "==", "="):
            field, found, value = part.partition(op)
            if found:
                break
        else:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
        field = field.strip()
        if field not in supported:
            raise bad_request(f"field label not supported: {field}")
        terms.append((field, op != "!=", _unescape(value)))
    return FieldSelector(tuple(terms))
