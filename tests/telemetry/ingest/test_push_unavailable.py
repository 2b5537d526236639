"""With the database unreachable, a push is never acknowledged: 503 with Retry-After, never 202."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from tests.servers import ROOT, free_port


@pytest.fixture
def server_without_database(tmp_path: Path) -> Iterator[int]:
    port, dead = free_port(), free_port()  # nothing listens on ``dead``: PostgreSQL is "down"
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{dead}/readiness",
        "READINESS_VAR_DIR": str(tmp_path),
        # gunicorn.conf.py's settings with one process: it alone boots before the first request.
        "WEB_WORKERS": "1",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "readiness.wsgi:application", "--bind", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.1)
    yield port
    process.terminate()
    process.wait(timeout=20)


def test_push_answers_503_with_retry_after_when_the_database_is_down(server_without_database: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server_without_database, timeout=30)
    conn.request(
        "POST",
        "/api/v1/metrics",
        body=orjson.dumps({"points": [{"metric": "m", "value": 1.0}]}),
        headers={"Authorization": "Bearer rdy_anything", "Content-Type": "application/json"},
    )
    response = conn.getresponse()
    body = orjson.loads(response.read())
    assert response.status == 503
    assert int(response.getheader("Retry-After")) > 0
    assert body["error"]["code"] == "unavailable"


def test_an_otlp_export_answers_503_with_retry_after_when_the_database_is_down(
    server_without_database: int,
) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server_without_database, timeout=30)
    conn.request(
        "POST",
        "/api/v1/otlp/v1/metrics",
        body=b"",  # an empty export: the token lookup already needs the database
        headers={"Authorization": "Bearer rdy_anything", "Content-Type": "application/x-protobuf"},
    )
    response = conn.getresponse()
    body = orjson.loads(response.read())
    assert response.status == 503
    assert int(response.getheader("Retry-After")) > 0  # OTLP exporters wait this long, then retry
    assert body["error"]["code"] == "unavailable"
