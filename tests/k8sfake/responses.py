"""What the REST layer hands the HTTP handler: a JSON body, text, or a stream."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from tests.k8sfake.meta import JsonObj


class AbortStream(Exception):
    """Raised inside a stream to drop the connection without ending the chunked body."""


@dataclass(frozen=True)
class JsonResponse:
    """A complete JSON response."""

    code: int
    body: JsonObj

    def encoded(self) -> bytes:
        """Return the body as the apiserver encodes it (compact JSON)."""
        return json.dumps(self.body, separators=(",", ":")).encode() + b"\n"


@dataclass(frozen=True)
class TextResponse:
    """A complete text/plain response (a log read without follow)."""

    code: int
    text: str


@dataclass(frozen=True)
class StreamResponse:
    """A chunked response: a watch (JSON lines) or a followed log (text)."""

    chunks: Iterator[bytes]
    content_type: str
    close: Callable[[], None] = lambda: None  # release server-side state even if never iterated


Response = JsonResponse | TextResponse | StreamResponse
