"""HTTP/1.1 transport: read requests, write JSON, text or chunked streams.

One thread per connection (ThreadingHTTPServer); keep-alive like the real
server; streams are chunked and end with the zero chunk, or are cut without
it when a test aborts them.
"""

from __future__ import annotations

import select
import socket
import threading
import traceback
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import NamedTuple
from urllib.parse import parse_qs, urlsplit

from tests.k8sfake.api import ApiRequest, RestApi
from tests.k8sfake.errors import StatusError, acceptable, internal_error, not_acceptable
from tests.k8sfake.faults import Faults
from tests.k8sfake.responses import AbortStream, JsonResponse, Response, StreamResponse, TextResponse


class RecordedRequest(NamedTuple):
    """One request as the server saw it."""

    method: str
    path: str
    query: dict[str, str]


class KubeHTTPServer(ThreadingHTTPServer):
    """The listening socket plus what handlers share: the API and the records."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, api: RestApi) -> None:
        super().__init__(("127.0.0.1", 0), KubeRequestHandler)
        self.api = api
        self.records_lock = threading.Lock()
        self.requests: list[RecordedRequest] = []
        self.server_errors: list[str] = []
        self.connections: set[socket.socket] = set()
        self.faults = Faults()

    def record(self, request: RecordedRequest) -> None:
        """Remember a request for the test's assertions."""
        with self.records_lock:
            self.requests.append(request)

    def record_error(self, text: str) -> None:
        """Remember an unexpected exception inside the fake."""
        with self.records_lock:
            self.server_errors.append(text)

    def drop_connections(self) -> None:
        """Shut down every open client connection (used when stopping)."""
        with self.records_lock:
            connections = list(self.connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _peer_alive(connection: socket.socket) -> Callable[[], bool]:
    def alive() -> bool:
        try:
            readable, _, _ = select.select([connection], [], [], 0)
            return not readable or connection.recv(1, socket.MSG_PEEK) != b""
        except (OSError, ValueError):
            return False

    return alive


class KubeRequestHandler(BaseHTTPRequestHandler):
    """Serves one connection."""

    protocol_version = "HTTP/1.1"
    server: KubeHTTPServer

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without this, Nagle plus delayed ACKs cost 40 ms each.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.records_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.records_lock:
            self.server.connections.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        """Keep test output quiet."""

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _serve(self) -> None:
        url = urlsplit(self.path)
        query = {key: values[-1] for key, values in parse_qs(url.query, keep_blank_values=True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.record(RecordedRequest(self.command, url.path, query))
        request = ApiRequest(
            self.command,
            url.path,
            query,
            body,
            self.headers.get("Content-Type") or "application/json",
            _peer_alive(self.connection),
        )
        is_watch = query.get("watch") in ("1", "true", "True")
        hold = self.server.faults.held(self.command, url.path, is_watch)
        if hold is not None:
            hold.wait()
        fault = self.server.faults.take(self.command, url.path, is_watch)
        if fault is not None:
            headers = (("Retry-After", str(fault.retry_after)),) if fault.retry_after is not None else ()
            self._send(fault.error.code, "application/json", JsonResponse(0, fault.error.status()).encoded(), headers)
            return
        try:
            if url.path.startswith(("/api/", "/apis/")) or url.path in ("/api", "/apis"):
                if not acceptable(self.headers.get("Accept") or ""):
                    raise not_acceptable(log=url.path.endswith("/log"))
            response: Response = self.server.api.handle(request)
        except StatusError as error:
            response = JsonResponse(error.code, error.status())
        except Exception as crash:  # a bug in the fake: answer 500 and keep the traceback
            self.server.record_error(traceback.format_exc())
            response = JsonResponse(500, internal_error(repr(crash)).status())
        if isinstance(response, StreamResponse):
            self._stream(response)
        elif isinstance(response, TextResponse):
            self._send(response.code, "text/plain", response.text.encode())
        else:
            self._send(response.code, "application/json", response.encoded())

    def _headers(self, code: int, content_type: str) -> None:
        self.send_response(code, "Unprocessable Entity" if code == 422 else None)  # Go's phrase
        self.send_header("Audit-Id", str(uuid.uuid4()))
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Content-Type", content_type)

    def _send(self, code: int, content_type: str, data: bytes, headers: tuple[tuple[str, str], ...] = ()) -> None:
        self._headers(code, content_type)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, response: StreamResponse) -> None:
        self._headers(200, response.content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for chunk in response.chunks:
                if chunk:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.write(b"0\r\n\r\n")
        except AbortStream:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:  # the client went away
            self.close_connection = True
        finally:
            close = getattr(response.chunks, "close", None)
            if close is not None:
                close()
            response.close()
