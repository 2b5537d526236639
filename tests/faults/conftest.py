"""Fixtures of the fault suite: a broker the test may take away, a real worker, gunicorn serving the
app, and the figures each test reports at the end of the run (docs/reliability.md quotes them)."""

from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

import pytest
import redis
from django.conf import settings

from readiness.celery import app
from tests.api.conftest import world  # noqa: F401 -- the API tests' world, for the schemathesis run
from tests.faults.pipeline import apply_in_progress
from tests.servers import RedisServer, WebServer, Worker, database_url, free_port, subprocess_env, use_broker

# High enough that the load never meets it: the limiter stays in the request path (and its Redis
# counter goes down with the broker), but a fault test measures faults, not the limit.
UNLIMITED = {"READINESS_API_RATE_LIMIT": "1000000/s"}

FIGURES: list[str] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES:
        terminalreporter.section("fault suite figures")
        for line in FIGURES:
            terminalreporter.write_line(line)


@pytest.fixture
def report(record_property: Callable[[str, object], None]) -> Callable[[str], None]:
    """Print a test's figures and keep them for the run's summary."""

    def write(line: str) -> None:
        print(line)
        FIGURES.append(line)
        record_property("figures", line)

    return write


@pytest.fixture
def cases(request: pytest.FixtureRequest, report: Callable[[str], None]) -> Iterator[Counter[str]]:
    """A fuzz test's tally of outcomes (one per example hypothesis tried), reported at its end. An
    unhandled exception or a 5xx fails the test, so a passing run has none of either."""
    tally: Counter[str] = Counter()
    yield tally
    outcomes = ", ".join(f"{outcome} {n}" for outcome, n in sorted(tally.items()))
    passed = getattr(request.node, "call_passed", False)
    verdict = "unhandled exceptions 0" if passed else "FAILED: see the falsifying example above"
    report(f"{request.node.name}: {sum(tally.values())} cases ({outcomes}); {verdict}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    report = yield
    if report.when == "call":  # for the fixtures' teardown: did the test itself pass?
        item.call_passed = report.passed  # type: ignore[attr-defined]
    return report


class Broker(Protocol):
    """The broker of a fault test, which the test may take away and bring back: a private
    redis-server when the suite runs on Redis (as CI does), else the embedded file-system broker's
    folder, moved away and back."""

    url: str | None

    def unacknowledged(self) -> int:
        """Tasks a worker received and has not acknowledged yet (with acks_late: running or
        prefetched)."""
        ...

    def stop(self) -> None: ...

    def start(self) -> None: ...

    def close(self) -> None: ...


class PrivateRedis:
    def __init__(self) -> None:
        self.server = RedisServer(free_port())
        self.server.start()
        self.url = self.server.url

    def unacknowledged(self) -> int:
        # kombu's Redis transport keeps every delivered, unacknowledged message in this hash until
        # the ack (or a restore) removes it.
        with redis.Redis.from_url(self.url, socket_timeout=1) as client:
            return client.hlen("unacked")

    def stop(self) -> None:
        self.server.stop()

    def start(self) -> None:
        self.server.start()

    def close(self) -> None:
        self.server.stop()


class BrokerFolder:
    def __init__(self) -> None:
        self.url = None
        self.folder = Path(settings.VAR_DIR) / "broker"
        self.away = self.folder.with_name("broker-away")
        shutil.rmtree(self.away, ignore_errors=True)

    def unacknowledged(self) -> int:
        # The file-system transport keeps no record of deliveries outside the worker: a drain in the
        # middle of applying batches is the task known to be unacknowledged (acks_late).
        return int(apply_in_progress())

    def stop(self) -> None:
        self.folder.rename(self.away)

    def start(self) -> None:
        self.away.rename(self.folder)

    def close(self) -> None:
        if self.away.exists():
            shutil.rmtree(self.folder, ignore_errors=True)
            self.away.rename(self.folder)


@pytest.fixture
def broker() -> Iterator[Broker]:
    if not settings.CELERY_BROKER_URL.startswith("filesystem"):
        if shutil.which("redis-server") is None:
            pytest.fail("the fault suite on Redis needs redis-server to start a private broker")
        broker: Broker = PrivateRedis()
    else:
        broker = BrokerFolder()
    saved_env = os.environ.get("CELERY_BROKER_URL")
    saved_options = app.conf.broker_transport_options
    if broker.url is not None:
        use_broker(broker.url, {})  # this process publishes (the sweeps) to the private broker too
    yield broker
    if broker.url is not None:
        use_broker(saved_env, saved_options)
        if saved_env is None:
            app.conf.broker_url = settings.CELERY_BROKER_URL
    broker.close()


@pytest.fixture
def worker(broker: Broker, tmp_path: Path) -> Iterator[Worker]:
    process = Worker(broker.url, log=tmp_path / "worker.log")
    process.start()
    process.wait_ready()
    yield process
    process.stop()


@pytest.fixture
def web(broker: Broker, tmp_path: Path) -> Iterator[WebServer]:
    env = subprocess_env(broker_url=broker.url, db_url=database_url(), **UNLIMITED)
    server = WebServer(env, log=tmp_path / "gunicorn.log")
    server.start()
    yield server
    server.stop()
