"""Real receivers for the notifications to reach: an HTTP server that records every webhook POST and
answers what the test scripts, and an SMTP server (aiosmtpd) that records every mail, both on free
ports. The outside world is these servers; nothing of ours is patched."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
import pytest
import time_machine
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from django.test import override_settings

from readiness.alerts.models import Channel, Delivery
from readiness.projects.models import Project
from readiness.scoring.models import Criterion
from readiness.scoring.services import scorecard_refresh
from tests.conftest import Cast
from tests.factories import MetricCriterionFactory, MetricPointFactory

T0 = dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def test_clock(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every alerts test runs on its own clock, a few minutes after T0 and ticking: events happen at
    T0 and their deliveries fall due then, so a sender or sweep that reads the clock must see that clock,
    never the day the suite runs (a real clock before T0 found nothing due). Tests with a real worker
    stay on the real clock, which the worker's process shares, and compute their times from now."""
    if request.node.get_closest_marker("worker"):
        yield
        return
    with time_machine.travel(T0 + dt.timedelta(minutes=5)):
        yield


# --- A webhook receiver -----------------------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class Receiver:
    port: int
    received: list[Received] = field(default_factory=list)
    # Statuses to answer, in order; once used up, ``status``. A test scripts 503, 503, 200 and so on.
    script: list[int] = field(default_factory=list)
    status: int = 200
    delay: float = 0.0  # seconds before answering: widens the window two senders could race in
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str = "/hooks/readiness") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def next_status(self) -> int:
        with self.lock:
            return self.script.pop(0) if self.script else self.status


class ReceiverHandler(BaseHTTPRequestHandler):
    server: ReceiverServer

    def do_POST(self) -> None:
        receiver = self.server.receiver
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if receiver.delay:
            time.sleep(receiver.delay)
        with receiver.lock:
            receiver.received.append(
                Received(path=self.path, headers=dict(self.headers.items()), body=orjson.loads(body or b"{}"))
            )
        status = receiver.next_status()
        answer = b"ok" if status < 400 else b"nope"
        self.send_response(status)
        if 300 <= status < 400:
            self.send_header("Location", "/elsewhere")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: object) -> None:
        pass


class ReceiverServer(ThreadingHTTPServer):
    daemon_threads = True
    receiver: Receiver


def start_receiver() -> tuple[ReceiverServer, Receiver]:
    server = ReceiverServer(("127.0.0.1", 0), ReceiverHandler)
    server.receiver = Receiver(port=server.server_address[1])
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server, hooks = start_receiver()
    yield hooks
    server.shutdown()
    server.server_close()


# --- An SMTP server ----------------------------------------------------------------------------------


@dataclass
class MailServer:
    port: int = 0
    messages: list[Envelope] = field(default_factory=list)
    # An SMTP reply to give every RCPT TO instead of accepting it, e.g. "550 5.1.1 no such user".
    refuse_recipients: str | None = None
    # Replies to give the next messages' end of data instead of accepting them, in order, e.g.
    # "451 4.3.0 try again later" (the message is recorded either way: it reached the server).
    data_replies: list[str] = field(default_factory=list)
    # While ``hold`` is set, a message is recorded and its reply (250) withheld until ``release`` is
    # set: the window in which the server has the message and the sender does not know it yet.
    hold: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    # Record the next message, then drop the connection without answering (a server that crashed).
    hang_up_after_data: bool = False

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if self.refuse_recipients:
            return self.refuse_recipients
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.messages.append(envelope)
        if self.data_replies:
            return self.data_replies.pop(0)
        if self.hang_up_after_data:
            self.hang_up_after_data = False
            assert server.transport is not None
            server.transport.abort()
            return "421 closing"  # never reaches the client: its connection is gone
        while self.hold.is_set() and not self.release.is_set():
            await asyncio.sleep(0.02)
        return "250 Message accepted for delivery"

    def message_ids(self) -> list[str]:
        # A Message-ID longer than a header line (a delivery id of three digits is enough) is folded
        # after its name; the space the unfolding leaves is folding whitespace, not part of the id.
        return [str(parsed(envelope)["Message-ID"]).strip() for envelope in self.messages]


def parsed(envelope: Envelope) -> EmailMessage:
    message = message_from_bytes(envelope.content, policy=email_policy.default)
    assert isinstance(message, EmailMessage)
    return message


class FreePortController(Controller):
    """aiosmtpd's controller, listening on a port the system picks (port 0) instead of a fixed one."""

    def _trigger_server(self) -> None:
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


@pytest.fixture
def smtp_server() -> Iterator[MailServer]:
    handler = MailServer()
    controller = FreePortController(handler, hostname="127.0.0.1", port=0)
    controller.start()
    handler.port = controller.port
    yield handler
    handler.release.set()
    controller.stop()


def smtp_settings(server: MailServer, **more: Any) -> override_settings:
    """The SMTP backend a deployment uses (settings.py, with EMAIL_HOST set), pointed at ``server``."""
    return override_settings(
        EMAIL_BACKEND="readiness.alerts.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=server.port,
        EMAIL_USE_TLS=False,
        EMAIL_HOST_USER="",
        EMAIL_HOST_PASSWORD="",
        **more,
    )


# --- A project that changes ----------------------------------------------------------------------------


@pytest.fixture
def project(cast: Cast) -> Project:
    """The cast's project as a prototype: its target is pilot, where sign-offs are optional, so its
    decision follows its criteria alone."""
    Project.objects.filter(pk=cast.project.pk).update(stage="prototype")
    cast.project.refresh_from_db()
    return cast.project


def accuracy_criterion(project: Project, **fields: Any) -> Criterion:
    values: dict[str, Any] = {
        "key": "model_quality",
        "dimension": "data_science",
        "metric": "accuracy",
        "aggregation": "latest",
        "window": "24h",
        "op": ">=",
        "threshold": 0.9,
    }
    return MetricCriterionFactory(project=project, **(values | fields))


def push(project: Project, value: float, at: dt.datetime, metric: str = "accuracy") -> None:
    MetricPointFactory(project=project, metric=metric, value=value, ts=at)


def go_then_no_go(project: Project) -> None:
    """Two scorecards: go at T0 (the first one), then no_go at T0+2min as accuracy drops below 0.9."""
    accuracy_criterion(project)
    push(project, 0.95, T0 - dt.timedelta(minutes=1))
    assert scorecard_refresh(project=project, now=T0).decision == "go"
    push(project, 0.5, T0 + dt.timedelta(minutes=1))
    assert scorecard_refresh(project=project, now=T0 + dt.timedelta(minutes=2)).decision == "no_go"


def webhook(project: Project, url: str, **fields: Any) -> Channel:
    return Channel.objects.create(project=project, kind="webhook", url=url, **fields)


def email(project: Project, *to: str, **fields: Any) -> Channel:
    return Channel.objects.create(
        project=project, kind="email", to=list(to or ["ml-ops@example.com"]), **fields
    )


def only_delivery(channel: Channel) -> Delivery:
    deliveries = list(Delivery.objects.filter(channel=channel))
    assert len(deliveries) == 1, deliveries
    return deliveries[0]
