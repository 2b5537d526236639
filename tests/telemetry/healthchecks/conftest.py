"""A real HTTP server on 127.0.0.1 for the probes to ask, with one route per way a target can be."""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

SLOW_SECONDS = 3.0  # past every timeout the tests give the slow route


@dataclass
class TargetServer:
    port: int
    # (path, Host header) of every request received, to prove what was (not) asked.
    requests: list[tuple[str, str]] = field(default_factory=list)

    def url(self, path: str, host: str = "127.0.0.1", scheme: str = "http") -> str:
        return f"{scheme}://{host}:{self.port}{path}"


class Handler(BaseHTTPRequestHandler):
    server: Server

    def do_GET(self) -> None:
        self.server.target.requests.append((self.path, self.headers.get("Host", "")))
        path = self.path.split("?")[0]
        if path == "/slow":
            time.sleep(SLOW_SECONDS)
        status, body = {
            "/up": (200, b"status: ok"),
            "/down": (503, b"overloaded"),
            "/wrong-body": (200, b"status: degraded"),
            "/slow": (200, b"status: ok"),
            "/redirect": (302, b""),
        }.get(path, (404, b"no such route"))
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        if path == "/redirect":
            self.send_header("Location", "/up")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_HEAD = do_GET

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True  # a /slow handler still sleeping must not hold up the shutdown
    target: TargetServer

    def handle_error(self, request: object, client_address: object) -> None:
        # A probe that timed out hung up before /slow answered: expected, not worth a traceback.
        pass


@pytest.fixture(scope="session")
def target_server() -> Iterator[TargetServer]:
    server = Server(("127.0.0.1", 0), Handler)
    server.target = TargetServer(port=server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.target
    server.shutdown()
    server.server_close()


@dataclass
class TLSServer(TargetServer):
    cafile: str = ""  # the self-signed certificate, to trust it in a client's context
    hostname: str = "model.internal.test"  # the only name the certificate is valid for


@pytest.fixture(scope="session")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TLSServer]:
    """The same routes over TLS, with a self-signed certificate for model.internal.test only.

    Without the openssl command the TLS tests skip on a workstation and fail in CI (``CI`` set), as
    the browser tests do: .ci/run installs it."""
    if shutil.which("openssl") is None:
        if os.environ.get("CI"):
            pytest.fail("needs the openssl command to make a certificate (apt-get install openssl)")
        pytest.skip("needs the openssl command to make a certificate (apt-get install openssl)")
    folder: Path = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-nodes", "-days", "2", "-subj", "/CN=model.internal.test"),
            *("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"),
            *("-keyout", str(key), "-out", str(cert), "-addext", "subjectAltName=DNS:model.internal.test"),
        ],
        check=True,
        capture_output=True,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = Server(("127.0.0.1", 0), Handler)
    # Handshake in the handler's thread, not in accept: a client rejecting the certificate must not
    # stall the listening loop.
    server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    server.target = TLSServer(port=server.server_address[1], cafile=str(cert))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.target  # type: ignore[misc]
    server.shutdown()
    server.server_close()


@pytest.fixture
def refused_port() -> int:
    """A port nothing listens on: bound then released, so connecting is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Names the test makes resolve to chosen addresses: DNS is the outside world, patched at its one
    point (socket.getaddrinfo, which the event loop's resolver calls). Other names resolve as usual."""
    names: dict[str, list[str]] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host: object, port: object, *args: object, **kwargs: object) -> list[tuple]:
        if isinstance(host, str) and host in names:
            return [
                (
                    socket.AF_INET6 if ":" in address else socket.AF_INET,
                    socket.SOCK_STREAM,
                    socket.IPPROTO_TCP,
                    "",
                    (address, port, 0, 0) if ":" in address else (address, port),
                )
                for address in names[host]
            ]
        return real(host, port, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return names
