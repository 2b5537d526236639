"""Email exactly once, or visibly perhaps once: a stable Message-ID on every attempt, the attempt
committed before the mail server is contacted, and a claim that lapsed after its attempt began marked
``uncertain`` instead of sent again. Every message goes to a real SMTP server (aiosmtpd) on a free
port. The crashed workers here are steps of the real services left unfinished, at the points a
SIGKILL leaves them; tests/faults/test_notification_crash.py kills real worker processes."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator

import pytest
from django.test import Client
from django.urls import reverse
from django.utils.html import escape
from prometheus_client import REGISTRY

from readiness.alerts.models import Channel, Delivery
from readiness.alerts.sending import (
    LOST_BEFORE_SENDING,
    LOST_WHILE_SENDING,
    UNCERTAIN,
    attempt_start,
    delivery_claim,
    delivery_send,
    lease,
)
from readiness.alerts.services import deliveries_sweep
from readiness.alerts.transports import EmailTransport, Message, TransientError, UncertainError
from readiness.projects.models import Project
from tests.alerts.conftest import (
    MailServer,
    Receiver,
    email,
    go_then_no_go,
    only_delivery,
    smtp_settings,
    webhook,
)
from tests.conftest import Cast
from tests.servers import wait_for

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
LEASE = lease()
FROM = "Readiness <alerts@readiness.example.com>"


@pytest.fixture
def mail(smtp_server: MailServer) -> Iterator[MailServer]:
    with smtp_settings(smtp_server, DEFAULT_FROM_EMAIL=FROM):
        yield smtp_server


@pytest.fixture
def inbox(project: Project, mail: MailServer) -> Channel:
    channel = email(project, "ml-ops@example.com")
    go_then_no_go(project)  # one decision change: one pending delivery on the channel
    return channel


def attempts(delivery: Delivery) -> list[tuple[int, str]]:
    return list(delivery.attempt_log.values_list("number", "outcome"))


def state(delivery: Delivery) -> tuple[str, int]:
    delivery.refresh_from_db()
    return delivery.state, delivery.attempts


def uncertain_count() -> float:
    labels = {"channel": "email", "failure": "uncertain"}
    return REGISTRY.get_sample_value("readiness_notification_failures_total", labels) or 0.0


def died_after_the_attempt_began(delivery: Delivery) -> None:
    """What a worker killed while the mail server held its answer leaves: the claim, and the attempt
    committed as started, with no outcome."""
    claimed = delivery_claim(delivery_id=delivery.pk, now=NOW)
    assert claimed is not None
    assert attempt_start(delivery=claimed, now=NOW)


# --- Message-ID ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_every_attempt_of_an_email_carries_the_same_message_id_derived_from_the_delivery(
    inbox: Channel, mail: MailServer
) -> None:
    delivery = only_delivery(inbox)
    mail.data_replies = ["451 4.3.0 try again later"]  # the first attempt reaches the server, deferred
    assert delivery_send(delivery_id=delivery.pk, now=NOW) == "retrying"
    assert delivery_send(delivery_id=delivery.pk, now=NOW + dt.timedelta(seconds=30)) == "sent"
    stamp = f"{delivery.created_at:%Y%m%d%H%M%S%f}"
    expected = f"<readiness-delivery-{delivery.pk}.{stamp}@readiness.example.com>"
    assert mail.message_ids() == [expected, expected]
    assert attempts(delivery) == [(1, "transient"), (2, "sent")]


@pytest.mark.django_db
def test_message_ids_of_two_deliveries_differ(project: Project, mail: MailServer) -> None:
    channels = [email(project, "a@example.com"), email(project, "b@example.com")]
    go_then_no_go(project)
    for channel in channels:
        assert delivery_send(delivery_id=only_delivery(channel).pk) == "sent"
    first, second = mail.message_ids()
    assert first != second and first.endswith("@readiness.example.com>")


# --- The attempt is committed before the mail server is contacted --------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_attempt_is_committed_before_the_mail_server_answers(inbox: Channel, mail: MailServer) -> None:
    delivery = only_delivery(inbox)
    mail.hold.set()
    outcome: list[str] = []
    sender = threading.Thread(target=lambda: outcome.append(delivery_send(delivery_id=delivery.pk)))
    sender.start()
    try:
        assert wait_for(lambda: len(mail.messages) == 1, timeout=30)
        # Read from this thread's own connection while the sender waits for the 250: committed.
        assert attempts(delivery) == [(1, "started")]
        assert state(delivery) == ("sending", 1)
    finally:
        mail.release.set()
        sender.join(timeout=30)
    assert outcome == ["sent"]
    assert attempts(delivery) == [(1, "sent")]


# --- A worker that died mid-send ----------------------------------------------------------------------


@pytest.mark.django_db
def test_an_email_whose_worker_died_after_the_attempt_began_is_marked_uncertain_and_not_sent_again(
    inbox: Channel, mail: MailServer
) -> None:
    delivery = only_delivery(inbox)
    died_after_the_attempt_began(delivery)
    before = uncertain_count()
    # Before the lease runs out the dead worker is presumed alive: nothing happens.
    assert delivery_send(delivery_id=delivery.pk, now=NOW + LEASE - dt.timedelta(seconds=1)) == "not_claimed"
    assert deliveries_sweep(now=NOW + LEASE) == 1  # the sweep re-enqueues it, as for any lapsed claim
    assert delivery_send(delivery_id=delivery.pk, now=NOW + LEASE) == "uncertain"
    assert mail.messages == []  # the dead worker's message is the only one there could have been
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts, delivery.lease_expires_at) == ("uncertain", 1, None)
    assert delivery.last_error == UNCERTAIN
    assert list(delivery.attempt_log.values_list("number", "outcome", "error")) == [
        (1, "uncertain", UNCERTAIN)
    ]
    assert uncertain_count() == before + 1
    # Settled: never claimed, swept or counted again.
    later = NOW + 10 * LEASE
    assert delivery_send(delivery_id=delivery.pk, now=later) == "not_claimed"
    assert deliveries_sweep(now=later) == 0
    assert uncertain_count() == before + 1
    inbox.refresh_from_db()
    assert inbox.enabled  # the channel works; one message's fate is unknown


@pytest.mark.django_db
def test_an_email_whose_worker_died_before_the_attempt_was_recorded_is_sent_once(
    inbox: Channel, mail: MailServer
) -> None:
    delivery = only_delivery(inbox)
    assert delivery_claim(delivery_id=delivery.pk, now=NOW) is not None  # claimed, then killed
    assert delivery_send(delivery_id=delivery.pk, now=NOW + LEASE) == "sent"
    assert len(mail.messages) == 1
    assert list(delivery.attempt_log.values_list("number", "outcome", "error")) == [
        (1, "lost", LOST_BEFORE_SENDING),
        (2, "sent", ""),
    ]


@pytest.mark.django_db
def test_a_webhook_whose_worker_died_after_the_attempt_began_is_sent_again_with_the_same_key(
    project: Project, receiver: Receiver
) -> None:
    channel = webhook(project, receiver.url())
    go_then_no_go(project)
    delivery = only_delivery(channel)
    died_after_the_attempt_began(delivery)
    assert delivery_send(delivery_id=delivery.pk, now=NOW + LEASE) == "sent"
    assert [message.headers["Idempotency-Key"] for message in receiver.received] == [
        f"readiness-delivery-{delivery.pk}"
    ]
    assert list(delivery.attempt_log.values_list("number", "outcome", "error")) == [
        (1, "lost", LOST_WHILE_SENDING),
        (2, "sent", ""),
    ]


@pytest.mark.django_db
def test_a_sender_whose_claim_was_retaken_before_it_recorded_its_attempt_sends_nothing(
    inbox: Channel, mail: MailServer
) -> None:
    delivery = only_delivery(inbox)
    stalled = delivery_claim(delivery_id=delivery.pk, now=NOW)
    assert stalled is not None
    assert delivery_send(delivery_id=delivery.pk, now=NOW + LEASE) == "sent"
    # The first holder wakes up past its lease: its claim is gone, so it never reaches the server.
    assert not attempt_start(delivery=stalled, now=NOW + LEASE + dt.timedelta(seconds=1))
    assert len(mail.messages) == 1
    assert state(delivery) == ("sent", 2)


@pytest.mark.django_db(transaction=True)
def test_concurrent_workers_finding_a_lapsed_email_claim_mark_it_uncertain_once(
    inbox: Channel, mail: MailServer
) -> None:
    delivery = only_delivery(inbox)
    died_after_the_attempt_began(delivery)
    before = uncertain_count()
    start = threading.Barrier(4)
    outcomes: list[str] = []
    errors: list[BaseException] = []

    def sender() -> None:
        from django.db import connection

        try:
            start.wait(timeout=30)
            outcomes.append(delivery_send(delivery_id=delivery.pk, now=NOW + LEASE))
        except BaseException as exc:  # surfaced below: a thread's failure must fail the test
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=sender) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert sorted(outcomes) == ["not_claimed"] * 3 + ["uncertain"]
    assert mail.messages == []
    assert attempts(delivery) == [(1, "uncertain")]
    assert uncertain_count() == before + 1


# --- The admin console --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_uncertain_deliveries_are_listed_with_their_reason_and_filterable_in_the_admin(
    project: Project, mail: MailServer, cast: Cast
) -> None:
    doubtful, fine = email(project, "ml-ops@example.com"), email(project, "leads@example.com")
    go_then_no_go(project)
    uncertain = only_delivery(doubtful)
    died_after_the_attempt_began(uncertain)
    assert delivery_send(delivery_id=uncertain.pk, now=NOW + LEASE) == "uncertain"
    sent = only_delivery(fine)
    assert delivery_send(delivery_id=sent.pk, now=NOW + LEASE) == "sent"
    console = Client()
    console.force_login(cast.admin)

    page = console.get(reverse("admin:alerts_delivery_changelist"), {"state__exact": "uncertain"})
    assert page.status_code == 200
    assert [delivery.pk for delivery in page.context["cl"].result_list] == [uncertain.pk]
    html = page.content.decode()
    assert "may have been sent: its worker stopped during the attempt" in html  # the reason, shown
    assert 'href="?state__exact=uncertain"' in html  # offered among the state filters
    everything = console.get(reverse("admin:alerts_delivery_changelist"))
    assert {delivery.pk for delivery in everything.context["cl"].result_list} == {uncertain.pk, sent.pk}
    detail = console.get(reverse("admin:alerts_delivery_change", args=[uncertain.pk])).content.decode()
    assert escape(UNCERTAIN) in detail


# --- The mail server's answer lost without a crash --------------------------------------------------------


@pytest.mark.django_db
def test_an_email_whose_connection_dropped_after_the_data_is_uncertain_not_retried(
    inbox: Channel, mail: MailServer
) -> None:
    delivery = only_delivery(inbox)
    mail.hang_up_after_data = True  # the server had the whole message, then the line went dead
    before = uncertain_count()
    assert delivery_send(delivery_id=delivery.pk, now=NOW) == "uncertain"
    delivery.refresh_from_db()
    assert (delivery.state, delivery.lease_expires_at) == ("uncertain", None)
    assert delivery.last_error.startswith("may have been sent: the mail server received the whole message")
    assert attempts(delivery) == [(1, "uncertain")]
    assert uncertain_count() == before + 1
    assert delivery_send(delivery_id=delivery.pk, now=NOW + 10 * LEASE) == "not_claimed"
    assert deliveries_sweep(now=NOW + 10 * LEASE) == 0
    assert len(mail.messages) == 1
    inbox.refresh_from_db()
    assert inbox.enabled


def test_an_smtp_answer_that_never_comes_after_the_data_is_uncertain(mail: MailServer) -> None:
    mail.hold.set()  # the message recorded, the 250 withheld past the client's timeout
    with pytest.raises(UncertainError, match="received the whole message, then its answer never came"):
        EmailTransport(["ops@example.com"], timeout=1).send(a_message())
    assert len(mail.messages) == 1


def test_an_smtp_failure_before_the_data_was_sent_is_transient(mail: MailServer) -> None:
    mail.refuse_recipients = "451 4.7.1 greylisted, try again later"
    with pytest.raises(TransientError, match="deferred recipients"):
        EmailTransport(["ops@example.com"], timeout=1).send(a_message())
    mail.refuse_recipients = None
    mail.data_replies = ["451 4.3.0 try again later"]  # an answer to the data: not taken, for sure
    with pytest.raises(TransientError, match="451"):
        EmailTransport(["ops@example.com"], timeout=1).send(a_message())


def a_message() -> Message:
    return Message(
        subject="s",
        text="t",
        html="<p>h</p>",
        payload={"text": "t"},
        idempotency_key="readiness-delivery-1",
        message_id="<readiness-delivery-1.20261122100000000000@readiness.example.com>",
    )
