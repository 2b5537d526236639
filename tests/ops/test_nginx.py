"""deploy/nginx.conf, checked by Debian's nginx: ``nginx -t`` accepts it, and run for real in front of a
stand-in for web it hands web exactly the client's address, alone and behind a trusted load balancer,
whatever the client wrote into X-Forwarded-For itself. Django's side (READINESS_PROXY_COUNT=1) takes
the address nginx handed over.

Without nginx these tests skip on a workstation and fail in CI (``CI`` set): .ci/run installs it."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from django.test import RequestFactory

from readiness.security.logins import client_address
from tests.ops.conftest import ROOT, free_port, wait_for

NGINX_CONF = ROOT / "deploy" / "nginx.conf"
TRUST_LINE = "# set_real_ip_from 10.0.0.0/16;"


@pytest.fixture
def nginx() -> str:
    found = shutil.which("nginx") or next(
        (path for path in ("/usr/sbin/nginx", "/sbin/nginx") if os.access(path, os.X_OK)), None
    )
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("nginx is missing (apt-get install nginx-light)")
        pytest.skip("nginx is missing (apt-get install nginx-light)")
    return found


def main_config(folder: Path, server_config: Path) -> Path:
    """A minimal main configuration that includes the server block as the nginx image does, with its
    pid, logs and temporary files in ``folder``, so it runs as whoever runs the tests."""
    temp = "\n".join(
        f"    {kind}_temp_path {folder / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    config = folder / "nginx.conf"
    config.write_text(
        f"pid {folder / 'nginx.pid'};\n"
        f"error_log {folder / 'error.log'} warn;\n"
        "daemon off;\n"
        "events {}\n"
        "http {\n"
        f"    access_log {folder / 'access.log'};\n"
        f"{temp}\n"
        f"    include {server_config};\n"
        "}\n"
    )
    return config


def config_test(nginx: str, folder: Path, server_config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            nginx,
            "-t",
            "-p",
            str(folder),
            "-e",
            str(folder / "error.log"),
            "-c",
            str(main_config(folder, server_config)),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def behind_a_balancer(text: str, balancer: str) -> str:
    """The config as the load balancer set-up of docs/security.md has it: the balancer trusted."""
    assert TRUST_LINE in text, "deploy/nginx.conf no longer shows where to trust a load balancer"
    return text.replace(TRUST_LINE, f"set_real_ip_from {balancer};")


def test_nginx_accepts_the_shipped_config(nginx: str, tmp_path: Path) -> None:
    result = config_test(nginx, tmp_path, NGINX_CONF)
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr and "test is successful" in result.stderr


def test_nginx_accepts_the_config_with_a_load_balancer_trusted(nginx: str, tmp_path: Path) -> None:
    server = tmp_path / "default.conf"
    server.write_text(behind_a_balancer(NGINX_CONF.read_text(), "10.0.0.0/16"))
    result = config_test(nginx, tmp_path, server)
    assert result.returncode == 0, result.stderr


# --- nginx running: what web receives ------------------------------------------------------------


class EchoHandler(BaseHTTPRequestHandler):
    """Stands in for web: answers with the X-Forwarded-For it received."""

    def do_GET(self) -> None:
        body = (self.headers.get("X-Forwarded-For") or "").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass


@pytest.fixture
def web() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), EchoHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def running(nginx: str, folder: Path, text: str, web_port: int) -> tuple[subprocess.Popen[str], int]:
    """nginx serving ``text`` (deploy/nginx.conf, perhaps changed) on a free port, with web at
    ``web_port``: the compose service names and ports swapped for this machine's."""
    port = free_port()
    text = text.replace("listen 8080;", f"listen 127.0.0.1:{port};")
    text = text.replace("set $web http://web:8000;", f"set $web http://127.0.0.1:{web_port};")
    server = folder / "default.conf"
    server.write_text(text)
    process = subprocess.Popen(
        [nginx, "-p", str(folder), "-e", str(folder / "error.log"), "-c", str(main_config(folder, server))],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )

    def answers() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2):
                return True
        except OSError:
            return process.poll() is not None  # exited: stop waiting, the caller reports it

    wait_for(answers, timeout=30)
    assert process.poll() is None, process.stderr.read() if process.stderr else ""
    return process, port


def forwarded_to_web(port: int, forwarded: str | None) -> str:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/login/")
    if forwarded is not None:
        request.add_header("X-Forwarded-For", forwarded)
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 -- an http URL of ours
        return response.read().decode()


def django_client(forwarded: str, settings: Any) -> str | None:
    """The address Django throttles for what nginx handed over, as docker-compose.yml configures it."""
    settings.READINESS_PROXY_COUNT = 1
    return client_address(RequestFactory().get("/", REMOTE_ADDR="172.18.0.9", HTTP_X_FORWARDED_FOR=forwarded))


@pytest.fixture
def stopped() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        process.terminate()
        process.wait(timeout=30)


def test_nginx_alone_hands_web_the_client_not_what_it_claims(
    nginx: str, tmp_path: Path, web: int, stopped: list, settings: Any
) -> None:
    process, port = running(nginx, tmp_path, NGINX_CONF.read_text(), web)
    stopped.append(process)
    assert forwarded_to_web(port, None) == "127.0.0.1"
    # Nothing in front of nginx is trusted: a forged header is replaced by the real peer.
    handed = forwarded_to_web(port, "6.6.6.6, 203.0.113.7")
    assert handed == "127.0.0.1"
    assert django_client(handed, settings) == "127.0.0.1"


def test_behind_a_trusted_balancer_nginx_hands_web_the_client_the_balancer_saw(
    nginx: str, tmp_path: Path, web: int, stopped: list, settings: Any
) -> None:
    # The balancer is this machine (127.0.0.1): what it appended, the rightmost entry, is the client.
    text = behind_a_balancer(NGINX_CONF.read_text(), "127.0.0.1")
    process, port = running(nginx, tmp_path, text, web)
    stopped.append(process)
    handed = forwarded_to_web(port, "6.6.6.6, 203.0.113.7")
    assert handed == "203.0.113.7"  # the client's own "6.6.6.6" on the left never counts
    assert django_client(handed, settings) == "203.0.113.7"
    # A chain of trusted balancers is walked past: the first untrusted address from the right.
    assert forwarded_to_web(port, "6.6.6.6, 198.51.100.4, 127.0.0.1") == "198.51.100.4"
