"""The bound on a whole exchange, against peers that misbehave as no Prometheus or MLflow would on its
own (a proxy or a broken network in between): an answer trickled a few bytes at a time, and one too
large to hold. Real sockets on free ports; nothing of ours is replaced."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from readiness.telemetry.sources.exchange import MAX_ANSWER_BYTES
from readiness.telemetry.sources.mlflow import MlflowError, model_version
from readiness.telemetry.sources.prometheus import PrometheusError, query_range

HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"


class Peer:
    """One-connection-at-a-time HTTP peer on a free port that answers with ``answer(connection)``."""

    def __init__(self, answer: Callable[[socket.socket, threading.Event], None]) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.answer, self.closing = answer, threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.closing.is_set():
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            with connection:
                connection.recv(65536)
                with contextlib.suppress(OSError):  # the client hung up
                    self.answer(connection, self.closing)

    def close(self) -> None:
        self.closing.set()
        self.listener.close()
        self.thread.join(timeout=10)


def trickle(connection: socket.socket, closing: threading.Event) -> None:
    # A byte every 0.1 s restarts a read timeout every time; gives up after 5 s so that an unbounded
    # client fails this test rather than hanging it.
    connection.sendall(HEAD % 1_000_000)
    deadline = time.monotonic() + 5
    while not closing.is_set() and time.monotonic() < deadline:
        connection.sendall(b" ")
        time.sleep(0.1)


def flood(connection: socket.socket, closing: threading.Event) -> None:
    size = MAX_ANSWER_BYTES + 1024 * 1024
    connection.sendall(HEAD % size)
    chunk = b" " * (1024 * 1024)
    for _ in range(size // len(chunk)):
        if closing.is_set():
            return
        connection.sendall(chunk)


@pytest.fixture
def trickling() -> Iterator[Peer]:
    peer = Peer(trickle)
    yield peer
    peer.close()


def window() -> tuple[datetime, datetime]:
    end = datetime.now(UTC).replace(microsecond=0)
    return end - timedelta(minutes=1), end


def test_a_trickled_answer_costs_at_most_the_client_timeout_for_prometheus(trickling: Peer) -> None:
    start, end = window()
    with httpx.Client(timeout=1) as client:
        began = time.monotonic()
        with pytest.raises(PrometheusError, match=r"^no answer within 1 s$"):
            query_range(client, url=trickling.url, query="up", start=start, end=end, step=60)
        elapsed = time.monotonic() - began
    assert elapsed < 2


def test_a_trickled_answer_costs_at_most_the_client_timeout_for_mlflow(trickling: Peer) -> None:
    with httpx.Client(timeout=1) as client:
        began = time.monotonic()
        with pytest.raises(MlflowError, match=r"^no answer within 1 s$"):
            model_version(client, url=trickling.url, model="fraud-detector", alias="champion")
        elapsed = time.monotonic() - began
    assert elapsed < 2


def test_an_answer_past_the_size_bound_is_refused() -> None:
    peer = Peer(flood)
    start, end = window()
    try:
        with (
            httpx.Client(timeout=10) as client,
            pytest.raises(PrometheusError, match=r"^answer larger than 32 MiB$"),
        ):
            query_range(client, url=peer.url, query="up", start=start, end=end, step=60)
    finally:
        peer.close()
