"""Sending exactly once: a retried task, two concurrent senders, a crashed claim; the backoff schedule
of transient errors; permanent errors disabling the channel. Every message goes to a real local HTTP
server, which counts what it received."""

from __future__ import annotations

import datetime as dt
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection

from readiness.alerts import tasks
from readiness.alerts.models import Channel, Delivery
from readiness.alerts.sending import (
    MAX_ATTEMPTS,
    _finish,
    delivery_claim,
    delivery_send,
    lease,
    retry_delay,
)
from readiness.alerts.services import deliveries_sweep, notification_failed
from readiness.projects.models import Project
from tests.alerts.conftest import Receiver, go_then_no_go, only_delivery, webhook

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
LEASE = lease()  # the default, 2 minutes: these tests run with the default settings


@pytest.fixture
def hook(project: Project, receiver: Receiver) -> Channel:
    channel = webhook(project, receiver.url())
    go_then_no_go(project)  # records the events and one pending delivery on the channel
    return channel


@pytest.fixture
def failures() -> Iterator[list[dict[str, Any]]]:
    seen: list[dict[str, Any]] = []

    def listen(sender: object, **kwargs: Any) -> None:
        seen.append(kwargs)

    notification_failed.connect(listen)
    yield seen
    notification_failed.disconnect(listen)


def attempts(delivery: Delivery) -> list[tuple[int, str]]:
    return list(delivery.attempt_log.values_list("number", "outcome"))


# --- Exactly once -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_retried_task_sends_once(hook: Channel, receiver: Receiver) -> None:
    delivery = only_delivery(hook)
    # acks_late: a worker that dies after sending, before acknowledging, gets the task redelivered.
    assert tasks.delivery_send.apply(args=(delivery.pk,)).get() == "sent"
    assert tasks.delivery_send.apply(args=(delivery.pk,)).get() == "not_claimed"
    assert len(receiver.received) == 1
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts) == ("sent", 1)
    assert attempts(delivery) == [(1, "sent")]


@pytest.mark.django_db(transaction=True)
def test_concurrent_senders_send_each_delivery_once(project: Project, receiver: Receiver) -> None:
    channels = [webhook(project, receiver.url(f"/hook/{n}")) for n in range(6)]
    go_then_no_go(project)
    ids = list(Delivery.objects.filter(channel__in=channels).values_list("pk", flat=True))
    assert len(ids) == 6
    receiver.delay = 0.2  # each send takes a while: the other senders try to claim meanwhile
    start = threading.Barrier(4)
    outcomes: list[str] = []
    errors: list[BaseException] = []

    def sender() -> None:
        try:
            start.wait(timeout=30)
            for delivery_id in ids:  # every sender goes after every delivery, at the same time
                outcomes.append(delivery_send(delivery_id=delivery_id))
        except BaseException as exc:  # surfaced below: a thread's failure must fail the test
            errors.append(exc)
        finally:
            connection.close()  # each thread has its own database connection

    threads = [threading.Thread(target=sender) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    assert sorted(outcomes).count("sent") == 6
    assert sorted(outcomes).count("not_claimed") == 18
    assert sorted(r.path for r in receiver.received) == sorted(f"/hook/{n}" for n in range(6))
    assert set(Delivery.objects.values_list("state", "attempts")) == {("sent", 1)}


@pytest.mark.django_db
def test_a_crashed_claim_is_sent_again_once_its_lease_runs_out(hook: Channel, receiver: Receiver) -> None:
    delivery = only_delivery(hook)
    # A worker claims it and dies before sending anything: the claim stays, held by nobody.
    assert delivery_claim(delivery_id=delivery.pk, now=NOW) is not None
    assert delivery_send(delivery_id=delivery.pk, now=NOW + LEASE - dt.timedelta(seconds=1)) == "not_claimed"
    assert deliveries_sweep(now=NOW + LEASE - dt.timedelta(seconds=1)) == 0
    assert deliveries_sweep(now=NOW + LEASE) == 1
    assert delivery_send(delivery_id=delivery.pk, now=NOW + LEASE) == "sent"
    assert len(receiver.received) == 1
    assert attempts(delivery) == [(1, "lost"), (2, "sent")]


@pytest.mark.django_db
def test_a_late_report_of_a_retaken_claim_changes_nothing(hook: Channel, receiver: Receiver) -> None:
    delivery = only_delivery(hook)
    stale = delivery_claim(delivery_id=delivery.pk, now=NOW)
    assert stale is not None
    assert delivery_send(delivery_id=delivery.pk, now=NOW + LEASE) == "sent"
    # The first holder wakes up and reports a failure: the delivery stays sent.
    assert not _finish(stale, state="pending", outcome="transient", now=NOW + LEASE, error="late")
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts) == ("sent", 2)


@pytest.mark.django_db
def test_the_sweeper_re_enqueues_what_a_lost_message_left_pending(hook: Channel) -> None:
    delivery = only_delivery(hook)
    created = delivery.created_at
    assert deliveries_sweep(now=created + dt.timedelta(seconds=29)) == 0  # still on its normal path
    assert deliveries_sweep(now=created + dt.timedelta(seconds=30)) == 1


@pytest.mark.django_db
def test_the_webhook_carries_the_delivery_id_as_idempotency_key(hook: Channel, receiver: Receiver) -> None:
    delivery = only_delivery(hook)
    delivery_send(delivery_id=delivery.pk)
    assert receiver.received[0].headers["Idempotency-Key"] == f"readiness-delivery-{delivery.pk}"


# --- Transient errors and backoff ------------------------------------------------------------------------


def test_backoff_schedule_doubles_from_30_seconds() -> None:
    assert [retry_delay(n).total_seconds() for n in range(1, MAX_ATTEMPTS)] == [30, 60, 120, 240, 480]
    with pytest.raises(ValueError, match="numbered from 1"):
        retry_delay(0)


@pytest.mark.django_db
def test_transient_error_waits_for_its_backoff_then_succeeds(
    hook: Channel, receiver: Receiver, failures: list[dict[str, Any]]
) -> None:
    receiver.script = [503]
    delivery = only_delivery(hook)
    assert delivery_send(delivery_id=delivery.pk, now=NOW) == "retrying"
    delivery.refresh_from_db()
    assert delivery.state == "pending"
    assert delivery.next_attempt_at == NOW + dt.timedelta(seconds=30)
    assert "HTTP 503" in delivery.last_error
    assert delivery_send(delivery_id=delivery.pk, now=NOW + dt.timedelta(seconds=29)) == "not_claimed"
    assert delivery_send(delivery_id=delivery.pk, now=NOW + dt.timedelta(seconds=30)) == "sent"
    assert [r.body["delivery_id"] for r in receiver.received] == [delivery.pk, delivery.pk]
    assert attempts(delivery) == [(1, "transient"), (2, "sent")]
    hook.refresh_from_db()
    assert hook.enabled and hook.last_error == ""
    assert [(f["failure"], f["delivery"].pk) for f in failures] == [("transient", delivery.pk)]


@pytest.mark.django_db
@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_429_and_5xx_are_retried(hook: Channel, receiver: Receiver, status: int) -> None:
    receiver.script = [status]
    assert delivery_send(delivery_id=only_delivery(hook).pk, now=NOW) == "retrying"


@pytest.mark.django_db
def test_retries_give_up_after_the_last_attempt_and_disable_the_channel(
    hook: Channel, receiver: Receiver, failures: list[dict[str, Any]]
) -> None:
    receiver.status = 503
    delivery = only_delivery(hook)
    at, outcomes = NOW, []
    for attempt in range(1, MAX_ATTEMPTS + 1):
        outcomes.append(delivery_send(delivery_id=delivery.pk, now=at))
        if attempt < MAX_ATTEMPTS:
            at += retry_delay(attempt)
    assert outcomes == ["retrying"] * (MAX_ATTEMPTS - 1) + ["failed"]
    assert at - NOW == dt.timedelta(seconds=30 + 60 + 120 + 240 + 480)
    delivery.refresh_from_db()
    hook.refresh_from_db()
    assert delivery.state == "failed"
    assert not hook.enabled
    assert hook.last_error.startswith("gave up after 6 attempts; last: ")
    assert "HTTP 503" in hook.last_error
    assert hook.last_error_at == at
    assert [f["failure"] for f in failures] == ["transient"] * 5 + ["permanent"]


# --- Permanent errors ------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("status", [400, 401, 404, 410, 301])
def test_permanent_failure_disables_the_channel_and_records_last_error(
    hook: Channel, receiver: Receiver, failures: list[dict[str, Any]], status: int
) -> None:
    receiver.status = status
    delivery = only_delivery(hook)
    assert delivery_send(delivery_id=delivery.pk, now=NOW) == "failed"
    hook.refresh_from_db()
    delivery.refresh_from_db()
    assert not hook.enabled
    assert hook.last_error.startswith(f"{receiver.url()} answered HTTP {status}")
    assert hook.last_error_at == NOW
    assert (delivery.state, delivery.last_error) == ("failed", hook.last_error)
    assert attempts(delivery) == [(1, "permanent")]
    assert [(f["failure"], f["channel"].pk) for f in failures] == [("permanent", hook.pk)]
    assert len(receiver.received) == 1  # never tried again


@pytest.mark.django_db
def test_deliveries_left_for_a_disabled_channel_are_cancelled(hook: Channel, receiver: Receiver) -> None:
    Channel.objects.filter(pk=hook.pk).update(enabled=False)
    delivery = only_delivery(hook)
    assert delivery_send(delivery_id=delivery.pk, now=NOW) == "cancelled"
    delivery.refresh_from_db()
    assert delivery.state == "cancelled"
    assert receiver.received == []


@pytest.mark.django_db
def test_unreachable_webhook_is_transient(project: Project, refused_url: str) -> None:
    channel = webhook(project, refused_url)
    go_then_no_go(project)
    delivery = only_delivery(channel)
    assert delivery_send(delivery_id=delivery.pk, now=NOW) == "retrying"
    delivery.refresh_from_db()
    assert delivery.last_error.startswith(f"could not reach {refused_url}")


@pytest.fixture
def refused_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


@pytest.mark.django_db
def test_a_failed_delivery_counts_in_the_notification_failures_metric(
    hook: Channel, receiver: Receiver
) -> None:
    from prometheus_client import REGISTRY

    def counted() -> float:
        labels = {"channel": "webhook", "failure": "permanent"}
        return REGISTRY.get_sample_value("readiness_notification_failures_total", labels) or 0.0

    before = counted()
    receiver.status = 404
    assert delivery_send(delivery_id=only_delivery(hook).pk, now=NOW) == "failed"
    assert counted() == before + 1
