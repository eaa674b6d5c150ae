"""The node's TLS endpoint (kubelet port): `GET /containerLogs/{ns}/{pod}/{container}` as kubelet
serves it (the API server proxies `pods/log` here, with follow, timestamps, sinceTime/sinceSeconds,
tailLines, limitBytes, previous), and `POST /mutate`, a mutating admission webhook the simulator
registers when a test asks for sidecar injection. Its certificate comes from its own CA (openssl),
which the webhook configuration carries as caBundle; the API server does not verify kubelet
certificates without --kubelet-certificate-authority, as here. One asyncio loop in one thread
serves every connection.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import ssl
import subprocess
import threading
import time
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.k8ssim.crilog import LogOptions, read_logs

if TYPE_CHECKING:
    from tests.k8ssim.simulator import NodeSimulator

log = logging.getLogger("k8ssim.server")


def make_certs(directory: Path, ip: str) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for `ip` (CA cert, cert, key)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca, key, csr, crt = (directory / n for n in ("ca.key", "ca.crt", "node.key", "node.csr", "node.crt"))
    ext = directory / "node.ext"
    ext.write_text(
        f"subjectAltName=IP:{ip},DNS:localhost\nbasicConstraints=CA:FALSE\n"
        "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
    )
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "check": True}
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(ca_key),
            "-out",
            str(ca),
            "-days",
            "30",
            "-subj",
            "/CN=k8ssim-ca",
        ],
        **quiet,
    )  # type: ignore[call-overload]
    subprocess.run(
        [
            "openssl",
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(csr),
            "-subj",
            "/CN=k8ssim-node",
        ],
        **quiet,
    )  # type: ignore[call-overload]
    subprocess.run(
        [
            "openssl",
            "x509",
            "-req",
            "-in",
            str(csr),
            "-CA",
            str(ca),
            "-CAkey",
            str(ca_key),
            "-CAcreateserial",
            "-out",
            str(crt),
            "-days",
            "30",
            "-extfile",
            str(ext),
        ],
        **quiet,
    )  # type: ignore[call-overload]
    return ca, crt, key


class NodeServer:
    """The TLS endpoint: one asyncio loop in one thread serves every connection (a thousand log
    follows are a thousand coroutines, not threads); `pause()` drops it off the network (a lost
    node: the listener closed, open connections cut), `resume()` brings it back on the same port."""

    def __init__(self, sim: NodeSimulator, ip: str, certs: tuple[Path, Path, Path]) -> None:
        self.sim, self.ip = sim, ip
        self.ca, self.cert, self.key = certs
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="kubelet-server", daemon=True)
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._ctx.load_cert_chain(str(self.cert), str(self.key))

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(30)

    def start(self) -> None:
        if not self._thread.is_alive():
            self._thread.start()
        self._call(self._listen())

    def stop(self) -> None:
        if self._thread.is_alive():
            self._call(self._close())

    def shutdown(self) -> None:
        """Stop serving for good and end the loop's thread."""
        self.stop()
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)

    pause = stop
    resume = start

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(
                self._connection, self.ip, self.port, ssl=self._ctx, reuse_address=True, backlog=1024
            )
            self.port = self._server.sockets[0].getsockname()[1]

    async def _close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._open):
            writer.transport.abort()
        if self._tasks:  # cut off, each handler ends at its next read or write (within a second)
            await asyncio.wait(list(self._tasks), timeout=5)
        if server is not None:
            await server.wait_closed()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._open.add(writer)
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            while True:
                request = await _read_request(reader)
                if request is None or not await self._answer(request, writer):
                    return
        except (OSError, ssl.SSLError, asyncio.IncompleteReadError, ValueError):
            pass
        except Exception:  # noqa: BLE001
            log.exception("kubelet endpoint")
        finally:
            self._open.discard(writer)
            self._tasks.discard(task)
            writer.close()

    async def _answer(self, request: tuple[str, str, bytes], writer: asyncio.StreamWriter) -> bool:
        """Answer one request; False when the connection is to be closed."""
        method, target, body = request
        url = urlsplit(target)
        if method == "POST" and url.path == "/mutate":
            await self._mutate(body, writer)
            return True
        parts = [unquote(p) for p in url.path.split("/") if p]
        if method == "GET" and parts == ["healthz"]:
            return await _error(writer, 200, "ok")
        if method != "GET" or len(parts) != 4 or parts[0] != "containerLogs":
            return await _error(writer, 404, "404 page not found")
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        _, namespace, pod, container = parts
        sim = self.sim
        sim.faults.log_request(namespace, pod, container, query)
        worker = sim.worker(namespace, pod)
        if worker is None:
            return await _error(writer, 404, f'pod "{pod}_{namespace}" does not exist\n')
        runtime = worker.container(container)
        if runtime is None:
            return await _error(writer, 404, f'container "{container}" not found in pod "{pod}_{namespace}"\n')
        if query.get("previous", "false").lower() in ("true", "1"):
            return await _error(writer, 400, f'previous terminated container "{container}" in pod "{pod}" not found')
        if runtime.log is None:
            return await _error(
                writer, 400, f'container "{container}" in pod "{pod}" is waiting to start: {runtime.state.reason}'
            )
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        )

        async def write(data: bytes) -> None:
            writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            await writer.drain()

        await read_logs(
            runtime.log,
            LogOptions(query, time.time_ns()),
            lambda: runtime.state.state == "running",
            write,
            stalled=lambda: sim.faults.log_stalled(namespace, pod) or sim.node_lost.is_set(),
            closed=writer.is_closing,
        )
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return False

    async def _mutate(self, body: bytes, writer: asyncio.StreamWriter) -> None:
        review = json.loads(body)
        request = review.get("request") or {}
        patch = self.sim.faults.mutate(request.get("object") or {}, request.get("namespace", ""))
        response: dict[str, Any] = {"uid": request.get("uid"), "allowed": True}
        if patch:
            response.update(patchType="JSONPatch", patch=base64.b64encode(json.dumps(patch).encode()).decode())
        answer = json.dumps(
            {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}
        ).encode()
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(answer)}\r\n\r\n".encode()
            + answer
        )
        await writer.drain()


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str, bytes] | None:
    """(method, target, body) of the next HTTP/1.1 request; None at the end of the connection."""
    line = await reader.readline()
    if not line.strip():
        return None
    method, target, _ = line.decode("latin-1").split(" ", 2)
    length = 0
    while (header := await reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = header.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    body = await reader.readexactly(length) if length else b""
    return method, target, body


async def _error(writer: asyncio.StreamWriter, code: int, text: str) -> bool:
    """Answer with a plain-text body and close the connection (False)."""
    body = text.encode()
    writer.write(
        f"HTTP/1.1 {code} {HTTPStatus(code).phrase}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body
    )
    await writer.drain()
    return False
