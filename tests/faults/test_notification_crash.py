"""kill -9 of a Celery worker in the middle of sending a notification (issue 6, item 5; issue 10,
item 2), against real worker subprocesses on the configured broker, a real webhook receiver and a real
SMTP server (aiosmtpd), each on a free port.

The delivery protocol (readiness/alerts/sending.py): a worker claims the delivery with a lease, commits
its attempt as ``started``, sends the message (the webhook with ``Idempotency-Key:
readiness-delivery-<id>``, the email with a Message-ID derived from it), then records the outcome. A
worker killed in between leaves the claim; once its lease has run out the sweeper re-enqueues the
delivery, and the next worker reads how far the dead one got. The windows, each made deterministic:

Webhooks (sent again when in doubt: the receiver deduplicates on the key):
- after the request reached the receiver, before the answer was recorded: the receiver holds the
  request open, the worker is killed while it waits. The receiver then sees the message twice, with
  the same key: counted by key, the event is delivered once;
- after the claim, before any HTTP request: the receiver's accept queue is full, so the worker's TCP
  connect hangs (its SYN is dropped, the socket shows SYN_SENT); the worker is killed there. The
  receiver sees the message exactly once, from the next worker: nothing is lost.

Email (never sent twice; ``uncertain`` when in doubt):
- before the attempt is recorded (PostgreSQL only): the test holds a lock on the attempts table, so
  the worker, claim committed, waits on the INSERT of its attempt (seen in ``pg_stat_activity``); it is
  killed there. Nothing was sent, nothing recorded: the next worker sends it, exactly once;
- after the SMTP server accepted the message, before the outcome was committed: the server records
  the message and withholds its 250; the worker is killed while it waits. The next worker does not send
  it again: the delivery is ``uncertain``, shown as such in the admin console.

And without a crash, several evaluations' events with two workers racing over every delivery (each
enqueued twice): exactly one message per channel per evaluation.

The lease is shortened for the workers through READINESS_DELIVERY_LEASE_SECONDS; the sweep is the
task beat runs every minute, published here instead of waiting for beat.
"""

from __future__ import annotations

import datetime as dt
import socket
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import psycopg
import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from readiness.alerts import services
from readiness.alerts.models import Channel, Delivery, DeliveryAttempt
from readiness.alerts.sending import LOST_BEFORE_SENDING, UNCERTAIN
from readiness.alerts.tasks import delivery_send, sweep_deliveries
from readiness.celery import app
from readiness.projects.models import Project
from readiness.scoring.services import scorecard_refresh
from tests.alerts.conftest import FreePortController, MailServer, email, go_then_no_go, webhook
from tests.conftest import Cast
from tests.factories import MetricCriterionFactory, MetricPointFactory
from tests.faults.conftest import Broker
from tests.servers import SOLO, Worker, database_url, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

# Short enough for a test, long enough that a loaded machine's worker still holds the claim when it
# is killed (it is killed within a fraction of a second of being seen inside the send).
LEASE_SECONDS = 6
T0 = dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.UTC)


# --- The webhook receiver ----------------------------------------------------------------------------


@dataclass
class Received:
    path: str
    key: str
    body: dict[str, Any]


@dataclass
class Hook:
    """What the receiver saw, and how it behaves: ``hold`` keeps the next request open (recorded, not
    answered) until ``release`` is set; ``delay`` answers every request that late."""

    port: int
    received: list[Received] = field(default_factory=list)
    hold: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    delay: float = 0.0
    in_flight: int = 0
    most_in_flight: int = 0  # requests being answered at once, at most
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str = "/hooks/readiness") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def by_key(self) -> Counter[str]:
        with self.lock:
            return Counter(message.key for message in self.received)


class HookHandler(BaseHTTPRequestHandler):
    server: HookServer

    def do_POST(self) -> None:
        hook = self.server.hook
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with hook.lock:
            hook.received.append(
                Received(self.path, self.headers.get("Idempotency-Key", ""), orjson.loads(body or b"{}"))
            )
            held = hook.hold.is_set()
            hook.hold.clear()
            hook.in_flight += 1
            hook.most_in_flight = max(hook.most_in_flight, hook.in_flight)
        if held:
            hook.release.wait(timeout=120)
        elif hook.delay:
            self.server.stopping.wait(hook.delay)
        with hook.lock:
            hook.in_flight -= 1
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:
        pass


class HookServer(ThreadingHTTPServer):
    daemon_threads = True
    # Two connections wait in the accept queue at most: `fill_accept_queue` can fill it.
    request_queue_size = 1

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), HookHandler)
        self.hook = Hook(port=self.server_address[1])
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None

    def serve(self) -> None:
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    def pause(self) -> None:
        """Stop accepting connections; the socket keeps listening, so new ones queue in the kernel."""
        self.shutdown()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # The answer to a killed worker's request goes to a closed socket: expected, not a failure.
        pass


@pytest.fixture
def hook_server() -> Iterator[HookServer]:
    server = HookServer()
    server.serve()
    yield server
    server.stopping.set()
    server.hook.release.set()
    server.shutdown()
    server.server_close()


def fill_accept_queue(port: int) -> list[socket.socket]:
    """Connect until the paused server's accept queue is full: Linux then drops every new SYN, so the
    next client hangs in connect() and sends no request (until its connect timeout, 10 s for webhooks)."""
    waiting: list[socket.socket] = []
    for _ in range(16):
        client = socket.socket()
        client.settimeout(1.0)
        try:
            client.connect(("127.0.0.1", port))
        except OSError:
            client.close()
            return waiting
        waiting.append(client)
    raise AssertionError(f"the accept queue of port {port} never filled")


def connecting_to(port: int) -> bool:
    """Whether some socket on this machine is in SYN_SENT towards 127.0.0.1:``port``."""
    target = f"0100007F:{port:04X}"
    lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return any(line.split()[2] == target and line.split()[3] == "02" for line in lines)


# --- Workers and the delivery's state ---------------------------------------------------------------


class NamedWorker(Worker):
    """tests.servers.Worker with a node name of its own: two workers on one host otherwise answer a
    ping under one name, and the test could not tell that both are consuming. One process (solo): the
    kill must land in the process that is in the middle of the send, at the instant the test chose."""

    def __init__(self, broker_url: str | None, *, name: str, log: Path) -> None:
        super().__init__(broker_url, log=log, deployment=SOLO)
        self.name = name

    def arguments(self) -> list[str]:
        return [*super().arguments(), "--hostname", f"{self.name}@%h"]


class Workers:
    """Worker subprocesses on the test's broker and database, with the shortened lease."""

    def __init__(self, broker: Broker, logs: Path) -> None:
        self.broker, self.logs = broker, logs
        self.started: list[NamedWorker] = []
        self.env: dict[str, str] = {}  # more environment for the workers started from now on

    def start(self) -> NamedWorker:
        number = len(self.started)
        worker = NamedWorker(self.broker.url, name=f"notify-{number}", log=self.logs / f"worker-{number}.log")
        worker.env["READINESS_DELIVERY_LEASE_SECONDS"] = str(LEASE_SECONDS)
        worker.env.update(self.env)
        worker.start()
        self.started.append(worker)
        return worker

    def stop(self) -> None:
        for worker in self.started:
            worker.stop()

    def consuming(self) -> int:
        """How many of the started workers answer a ping (each under its own name)."""
        names = {f"{worker.name}@" for worker in self.started}
        replies = {name.split("@")[0] + "@" for reply in app.control.ping(timeout=1.0) for name in reply}
        return len(names & replies)

    def tails(self) -> str:
        return "\n".join(
            f"--- {log.name} ---\n{log.read_text(errors='replace')[-2000:]}"
            for log in sorted(self.logs.glob("worker-*.log"))
        )


@pytest.fixture
def workers(broker: Broker, tmp_path: Path) -> Iterator[Workers]:
    # Messages earlier runs left on this broker (deliveries of flushed databases) only delay a worker.
    app.control.purge()
    started = Workers(broker, tmp_path)
    yield started
    started.stop()


def the_delivery(channel: Channel) -> Delivery:
    deliveries = list(Delivery.objects.filter(channel=channel))
    assert len(deliveries) == 1, deliveries
    return deliveries[0]


def state(delivery: Delivery) -> tuple[str, int]:
    delivery.refresh_from_db()
    return delivery.state, delivery.attempts


def attempts(delivery: Delivery) -> list[tuple[int, str]]:
    return list(
        DeliveryAttempt.objects.filter(delivery=delivery).order_by("number").values_list("number", "outcome")
    )


def sweep_once_the_lease_ran_out(delivery: Delivery) -> None:
    """What beat's minute sweep does, as soon as the dead worker's lease has run out."""
    delivery.refresh_from_db()
    assert delivery.lease_expires_at is not None
    assert wait_for(lambda: timezone.now() > delivery.lease_expires_at, timeout=LEASE_SECONDS + 5)
    sweep_deliveries.delay()


@dataclass(frozen=True)
class Outcome:
    """What the receiver got, and what a receiver deduplicating on the Idempotency-Key keeps."""

    deliveries: int
    received: int  # requests that reached the receiver
    repeats: int  # requests carrying a key seen before: dropped by a deduplicating receiver
    delivered: int  # deliveries whose key arrived
    duplicates: int  # (channel, event) pairs that arrived under two different keys: never dropped
    lost: int  # deliveries whose key never arrived

    def line(self, name: str) -> str:
        return (
            f"{name}: deliveries {self.deliveries}, messages received {self.received} (repeats of a key "
            f"{self.repeats}); counted by Idempotency-Key: delivered {self.delivered}, duplicates "
            f"{self.duplicates}, lost {self.lost}"
        )


def outcome(hook: Hook, deliveries: list[Delivery]) -> Outcome:
    with hook.lock:
        messages = list(hook.received)
    expected = {f"readiness-delivery-{delivery.pk}" for delivery in deliveries}
    keys_of: dict[tuple[str, str], set[str]] = {}
    for message in messages:
        for event in message.body.get("events", []):
            identity = orjson.dumps(event, option=orjson.OPT_SORT_KEYS).decode()
            keys_of.setdefault((message.path, identity), set()).add(message.key)
    seen = {message.key for message in messages}
    return Outcome(
        deliveries=len(deliveries),
        received=len(messages),
        repeats=len(messages) - len(seen),
        delivered=len(expected & seen),
        duplicates=sum(len(keys) - 1 for keys in keys_of.values()),
        lost=len(expected - seen),
    )


@pytest.fixture
def project(cast: Cast) -> Project:
    # A prototype targets pilot, where sign-offs are optional: its decision follows its criteria alone.
    Project.objects.filter(pk=cast.project.pk).update(stage="prototype")
    cast.project.refresh_from_db()
    return cast.project


# --- The tests --------------------------------------------------------------------------------------


def test_a_worker_killed_while_the_receiver_holds_the_request_resends_with_the_same_key(
    project: Project, hook_server: HookServer, workers: Workers, report: Callable[[str], None]
) -> None:
    hook = hook_server.hook
    hook.hold.set()
    channel = webhook(project, hook.url())
    go_then_no_go(project)  # one decision change: one delivery, its send published on commit
    delivery = the_delivery(channel)
    first = workers.start()
    assert wait_for(lambda: len(hook.received) == 1, timeout=90), workers.tails()
    # Inside the send: claimed, the request at the receiver, no outcome recorded.
    assert state(delivery) == ("sending", 1)
    first.kill()
    hook.release.set()  # the answer goes to a dead socket
    assert state(delivery) == ("sending", 1)
    workers.start()
    sweep_once_the_lease_ran_out(delivery)
    assert wait_for(lambda: state(delivery)[0] == "sent", timeout=60), workers.tails()

    key = f"readiness-delivery-{delivery.pk}"
    assert [message.key for message in hook.received] == [key, key]
    # The same message both times (composed from the recorded events), so a receiver may drop the repeat.
    assert hook.received[0].body == hook.received[1].body
    assert hook.received[0].body["delivery_id"] == delivery.pk
    assert {event["kind"] for event in hook.received[0].body["events"]} >= {"decision_changed"}
    assert attempts(delivery) == [(1, "lost"), (2, "sent")]
    result = outcome(hook, [delivery])
    assert (result.received, result.repeats, result.delivered, result.duplicates, result.lost) == (
        2,
        1,
        1,
        0,
        0,
    )
    report(result.line("worker killed after the request was sent"))


def test_a_worker_killed_after_the_claim_before_the_request_still_delivers_once(
    project: Project, hook_server: HookServer, workers: Workers, report: Callable[[str], None]
) -> None:
    hook = hook_server.hook
    channel = webhook(project, hook.url())
    go_then_no_go(project)
    delivery = the_delivery(channel)
    hook_server.pause()
    waiting = fill_accept_queue(hook.port)
    first = workers.start()
    # Claimed, and its TCP connect to the receiver hanging: no byte of the request has left.
    assert wait_for(lambda: connecting_to(hook.port), timeout=90, interval=0.02), workers.tails()
    assert state(delivery) == ("sending", 1)
    first.kill()
    assert hook.received == []
    for client in waiting:
        client.close()
    hook_server.serve()
    workers.start()
    sweep_once_the_lease_ran_out(delivery)
    assert wait_for(lambda: state(delivery)[0] == "sent", timeout=60), workers.tails()

    assert [message.key for message in hook.received] == [f"readiness-delivery-{delivery.pk}"]
    assert hook.received[0].body["delivery_id"] == delivery.pk
    assert attempts(delivery) == [(1, "lost"), (2, "sent")]
    result = outcome(hook, [delivery])
    assert (result.received, result.repeats, result.delivered, result.duplicates, result.lost) == (
        1,
        0,
        1,
        0,
        0,
    )
    report(result.line("worker killed after the claim, before the request"))


def _evaluate(project: Project, *, passing: bool, at: dt.datetime) -> None:
    """Every criterion passes or fails at ``at``: a decision change, plus a regression per criterion
    when they fail, all events of one evaluation."""
    for metric in ("accuracy", "recall", "precision"):
        MetricPointFactory(project=project, metric=metric, value=0.95 if passing else 0.5, ts=at)
    scorecard_refresh(project=project, now=at + dt.timedelta(seconds=30))


def test_two_workers_send_one_message_per_channel_per_evaluation(
    project: Project, hook_server: HookServer, workers: Workers, report: Callable[[str], None]
) -> None:
    hook = hook_server.hook
    hook.delay = 0.3  # each send lasts a while: the other worker has time to try the same delivery
    for metric in ("accuracy", "recall", "precision"):
        MetricCriterionFactory(
            project=project,
            key=f"{metric}_floor",
            dimension="data_science",
            metric=metric,
            aggregation="latest",
            window="24h",
            op=">=",
            threshold=0.9,
        )
    channels = [webhook(project, hook.url(f"/hooks/{name}")) for name in ("alpha", "beta")]
    _evaluate(project, passing=True, at=T0)  # the first scorecard: no decision change, no events
    evaluations = 4
    for n in range(1, evaluations + 1):
        _evaluate(project, passing=n % 2 == 0, at=T0 + dt.timedelta(minutes=n))
    deliveries = list(Delivery.objects.filter(channel__in=channels).order_by("pk"))
    assert len(deliveries) == evaluations * len(channels)
    # The evaluations published one send per delivery; replace them with two sends per delivery, back
    # to back (as a redelivered message or an overlapping sweep would), for two workers started
    # together: each pair is taken by both workers at once, and only the claim stands between them.
    app.control.purge()
    workers.start()
    workers.start()
    assert wait_for(lambda: workers.consuming() == 2, timeout=90), workers.tails()
    for delivery in deliveries:
        delivery_send.delay(delivery.pk)
        delivery_send.delay(delivery.pk)
    assert wait_for(
        lambda: not Delivery.objects.exclude(state="sent").filter(channel__in=channels).exists(), timeout=90
    ), workers.tails()

    keys = hook.by_key()
    assert len(hook.received) == len(deliveries)
    assert set(keys) == {f"readiness-delivery-{delivery.pk}" for delivery in deliveries}
    assert set(keys.values()) == {1}
    paths = Counter(message.path for message in hook.received)
    assert paths == {urlsplit(channel.url).path: evaluations for channel in channels}
    events = {delivery.pk: delivery.items.count() for delivery in deliveries}
    for message in hook.received:
        # One message carries all the events of its evaluation: a decision change, plus three
        # regressions when the criteria failed.
        assert len(message.body["events"]) == events[message.body["delivery_id"]]
    assert sorted(events.values()) == [1, 1, 1, 1, 4, 4, 4, 4]
    assert set(DeliveryAttempt.objects.filter(delivery__in=deliveries).values_list("number", "outcome")) == {
        (1, "sent")
    }
    result = outcome(hook, deliveries)
    assert (result.received, result.repeats, result.delivered, result.duplicates, result.lost) == (
        8,
        0,
        8,
        0,
        0,
    )
    report(result.line("two workers, 4 evaluations x 2 channels"))


# --- Email: never sent twice ---------------------------------------------------------------------------

FROM = "alerts@readiness.example.com"
WAITING_ON_THE_ATTEMPT = """
    SELECT count(*) FROM pg_stat_activity
    WHERE datname = current_database() AND wait_event_type = 'Lock'
      AND query LIKE 'INSERT INTO "alerts_deliveryattempt"%'
"""


@pytest.fixture
def mail_server(workers: Workers) -> Iterator[MailServer]:
    handler = MailServer()
    controller = FreePortController(handler, hostname="127.0.0.1", port=0)
    controller.start()
    handler.port = controller.port
    # The workers' SMTP settings, as a deployment sets them (settings.py reads them at start).
    workers.env.update(EMAIL_HOST="127.0.0.1", EMAIL_PORT=str(handler.port), DEFAULT_FROM_EMAIL=FROM)
    yield handler
    handler.release.set()
    controller.stop()


def attempt_log(delivery: Delivery) -> list[tuple[int, str, str]]:
    return list(
        DeliveryAttempt.objects.filter(delivery=delivery)
        .order_by("number")
        .values_list("number", "outcome", "error")
    )


def test_an_email_worker_killed_before_its_attempt_was_recorded_is_sent_exactly_once(
    project: Project, mail_server: MailServer, workers: Workers, report: Callable[[str], None]
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("holds a lock on one table to stop the worker there; SQLite locks the whole file")
    channel = email(project, "ml-ops@example.com")
    go_then_no_go(project)
    delivery = the_delivery(channel)
    with psycopg.connect(database_url()) as holder:  # in a transaction until the rollback below
        # INSERTs wait; reads (the claim, composing the message) do not.
        holder.execute("LOCK TABLE alerts_deliveryattempt IN EXCLUSIVE MODE")
        first = workers.start()

        def waiting() -> bool:
            with connection.cursor() as cursor:
                cursor.execute(WAITING_ON_THE_ATTEMPT)
                return cursor.fetchone()[0] == 1

        # Claimed (committed), the message composed, its attempt's INSERT waiting: nothing sent yet.
        assert wait_for(waiting, timeout=90, interval=0.05), workers.tails()
        assert state(delivery) == ("sending", 1)
        first.kill()
        holder.rollback()
    assert mail_server.messages == []
    workers.start()
    sweep_once_the_lease_ran_out(delivery)
    assert wait_for(lambda: state(delivery)[0] == "sent", timeout=60), workers.tails()

    assert len(mail_server.messages) == 1
    stamp = f"{delivery.created_at:%Y%m%d%H%M%S%f}"
    assert mail_server.message_ids() == [f"<readiness-delivery-{delivery.pk}.{stamp}@readiness.example.com>"]
    assert attempt_log(delivery) == [(1, "lost", LOST_BEFORE_SENDING), (2, "sent", "")]
    report(
        f"email worker killed before its attempt was recorded: deliveries 1, emails received "
        f"{len(mail_server.messages)}, delivery {state(delivery)[0]}, attempts "
        f"{', '.join(outcome for _, outcome, _ in attempt_log(delivery))}"
    )


def test_an_email_worker_killed_after_the_smtp_server_accepted_leaves_it_uncertain_not_sent_twice(
    project: Project, cast: Cast, mail_server: MailServer, workers: Workers, report: Callable[[str], None]
) -> None:
    mail_server.hold.set()
    channel = email(project, "ml-ops@example.com")
    go_then_no_go(project)
    delivery = the_delivery(channel)
    first = workers.start()
    assert wait_for(lambda: len(mail_server.messages) == 1, timeout=90), workers.tails()
    # The server has the whole message and is about to say 250; the worker's attempt is committed.
    assert state(delivery) == ("sending", 1)
    assert attempt_log(delivery) == [(1, "started", "")]
    first.kill()
    mail_server.release.set()  # the 250 goes to a dead socket
    workers.start()
    sweep_once_the_lease_ran_out(delivery)
    assert wait_for(lambda: state(delivery)[0] == "uncertain", timeout=60), workers.tails()
    # The sweep of a minute later finds nothing to do: settled for good.
    assert services.deliveries_sweep(now=timezone.now() + dt.timedelta(minutes=1)) == 0

    assert len(mail_server.messages) == 1
    assert attempt_log(delivery) == [(1, "uncertain", UNCERTAIN)]
    console = Client()
    console.force_login(cast.admin)
    page = console.get(reverse("admin:alerts_delivery_changelist"), {"state__exact": "uncertain"})
    assert [row.pk for row in page.context["cl"].result_list] == [delivery.pk]
    assert "may have been sent: its worker stopped during the attempt" in page.content.decode()
    report(
        f"email worker killed after the SMTP server accepted: deliveries 1, emails received "
        f"{len(mail_server.messages)}, delivery {state(delivery)[0]} (listed by the admin console's "
        f"state filter), attempts {', '.join(outcome for _, outcome, _ in attempt_log(delivery))}"
    )
