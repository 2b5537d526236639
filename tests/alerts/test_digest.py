"""Digest channels (a daily summary per channel, for noisy projects): nothing is sent per evaluation;
the daily task sends one summary of the undelivered events, exactly once."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection

from readiness.alerts import tasks
from readiness.alerts.models import Delivery
from readiness.alerts.sending import delivery_send
from readiness.alerts.services import digests_open
from readiness.projects.models import Project
from readiness.scoring.services import scorecard_refresh
from tests.alerts.conftest import T0, Receiver, go_then_no_go, push, webhook


def back_to_go(project: Project) -> None:
    push(project, 0.97, T0 + dt.timedelta(minutes=3))
    assert scorecard_refresh(project=project, now=T0 + dt.timedelta(minutes=4)).decision == "go"


@pytest.mark.django_db
def test_digest_channel_sends_nothing_per_evaluation(project: Project, receiver: Receiver) -> None:
    channel = webhook(project, receiver.url(), digest=True)
    go_then_no_go(project)
    back_to_go(project)
    [delivery] = Delivery.objects.filter(channel=channel)
    assert delivery.state == "collecting"
    assert delivery.events.count() == 3  # go->no_go, the regression, no_go->go
    assert delivery_send(delivery_id=delivery.pk) == "not_claimed"  # not before the daily send
    assert receiver.received == []


@pytest.mark.django_db
def test_daily_digest_sends_one_summary_of_the_day_exactly_once(project: Project, receiver: Receiver) -> None:
    channel = webhook(project, receiver.url(), digest=True)
    immediate = webhook(project, receiver.url("/immediate"))
    go_then_no_go(project)
    back_to_go(project)
    assert tasks.send_digests.apply().get() == 1
    assert tasks.send_digests.apply().get() == 0  # a second run (or a second beat) opens nothing
    [digest] = Delivery.objects.filter(channel=channel)
    assert tasks.delivery_send.apply(args=(digest.pk,)).get() == "sent"
    assert tasks.delivery_send.apply(args=(digest.pk,)).get() == "not_claimed"
    [summary] = [r.body for r in receiver.received if r.path == "/hooks/readiness"]
    assert summary["digest"] is True
    assert summary["decision"] == {"old": "go", "new": "go"}
    assert [e["kind"] for e in summary["events"]] == [
        "decision_changed",
        "criterion_regressed",
        "decision_changed",
    ]
    assert summary["text"].startswith("*Daily summary for Fraud detector: 3 events, decision GO*")
    # The channel without digest got its two messages, one per evaluation, untouched by the digest.
    assert Delivery.objects.filter(channel=immediate).count() == 2


@pytest.mark.django_db
def test_events_after_the_daily_send_start_the_next_digest(project: Project, receiver: Receiver) -> None:
    channel = webhook(project, receiver.url(), digest=True)
    go_then_no_go(project)
    assert digests_open() == 1
    back_to_go(project)
    first, second = Delivery.objects.filter(channel=channel).order_by("id")
    assert (first.state, first.events.count()) == ("pending", 2)
    assert (second.state, second.events.count()) == ("collecting", 1)


@pytest.mark.django_db
def test_a_day_without_events_sends_no_digest(project: Project, receiver: Receiver) -> None:
    webhook(project, receiver.url(), digest=True)
    assert digests_open() == 0
    assert not Delivery.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_two_daily_runs_at_once_open_each_digest_once(project: Project, receiver: Receiver) -> None:
    channels = [webhook(project, receiver.url(f"/digest/{n}"), digest=True) for n in range(5)]
    go_then_no_go(project)
    start = threading.Barrier(2)
    opened: list[int] = []

    def run() -> None:
        try:
            start.wait(timeout=30)
            opened.append(digests_open())
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sum(opened) == 5
    assert Delivery.objects.filter(channel__in=channels, state="pending").count() == 5
