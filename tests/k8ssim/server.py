"""The node's TLS endpoint (kubelet port): `GET /containerLogs/{ns}/{pod}/{container}` as kubelet
serves it (the API server proxies `pods/log` here, with follow, timestamps, sinceTime/sinceSeconds,
tailLines, limitBytes, previous), and `POST /mutate`, a mutating admission webhook the simulator
registers when a test asks for sidecar injection. Its certificate comes from its own CA (openssl),
which the webhook configuration carries as caBundle; the API server does not verify kubelet
certificates without --kubelet-certificate-authority, as here.
"""

from __future__ import annotations

import base64
import json
import logging
import socket
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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
    ext.write_text(f"subjectAltName=IP:{ip},DNS:localhost\nbasicConstraints=CA:FALSE\n"
                   "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "check": True}
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out",
                    str(ca), "-days", "30", "-subj", "/CN=k8ssim-ca"], **quiet)  # type: ignore[call-overload]
    subprocess.run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
                    "-subj", "/CN=k8ssim-node"], **quiet)  # type: ignore[call-overload]
    subprocess.run(["openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
                    "-CAcreateserial", "-out", str(crt), "-days", "30", "-extfile", str(ext)],
                   **quiet)  # type: ignore[call-overload]
    return ca, crt, key


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], sim: NodeSimulator) -> None:
        self.sim = sim
        self.open: set[socket.socket] = set()
        self.open_lock = threading.Lock()
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt: str, *args: Any) -> None:
        log.debug("%s " + fmt, self.address_string(), *args)

    def setup(self) -> None:
        super().setup()
        with self.server.open_lock:
            self.server.open.add(self.connection)

    def finish(self) -> None:
        with self.server.open_lock:
            self.server.open.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def _error(self, code: int, text: str) -> None:
        body = text.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def do_GET(self) -> None:  # noqa: N802
        url = urlsplit(self.path)
        parts = [unquote(p) for p in url.path.split("/") if p]
        if parts == ["healthz"]:
            return self._error(200, "ok")
        if len(parts) != 4 or parts[0] != "containerLogs":
            return self._error(404, "404 page not found")
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        _, namespace, pod, container = parts
        sim = self.server.sim
        sim.faults.log_request(namespace, pod, container, query)
        worker = sim.worker(namespace, pod)
        if worker is None:
            return self._error(404, f'pod "{pod}_{namespace}" does not exist\n')
        runtime = worker.container(container)
        if runtime is None:
            return self._error(404, f'container "{container}" not found in pod "{pod}_{namespace}"\n')
        if query.get("previous", "false").lower() in ("true", "1"):
            return self._error(400, f'previous terminated container "{container}" in pod "{pod}" not found')
        if runtime.log is None:
            return self._error(400, f'container "{container}" in pod "{pod}" is waiting to start: '
                                    f"{runtime.state.reason}")
        opts = LogOptions(query, time.time_ns())
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        stop = threading.Event()

        def write(data: bytes) -> None:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        try:
            read_logs(runtime.log.path, opts, lambda: runtime.state.state == "running", write,
                      stalled=lambda: sim.faults.log_stalled(namespace, pod) or sim.node_lost.is_set(), stop=stop)
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (OSError, ssl.SSLError):
            stop.set()

    def do_POST(self) -> None:  # noqa: N802
        if urlsplit(self.path).path != "/mutate":
            return self._error(404, "404 page not found")
        review = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        request = review.get("request") or {}
        patch = self.server.sim.faults.mutate(request.get("object") or {}, request.get("namespace", ""))
        response: dict[str, Any] = {"uid": request.get("uid"), "allowed": True}
        if patch:
            response.update(patchType="JSONPatch", patch=base64.b64encode(json.dumps(patch).encode()).decode())
        body = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                           "response": response}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class NodeServer:
    """The TLS server; `pause()` drops it off the network (a lost node), `resume()` brings it back."""

    def __init__(self, sim: NodeSimulator, ip: str, certs: tuple[Path, Path, Path]) -> None:
        self.sim, self.ip = sim, ip
        self.ca, self.cert, self.key = certs
        self.port = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        server = _Server((self.ip, self.port), self.sim)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(self.cert), str(self.key))
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="kubelet-server", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with server.open_lock:
            for conn in list(server.open):
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        if self._thread:
            self._thread.join(5)

    pause = stop
    resume = start
