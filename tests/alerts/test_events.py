"""Which evaluations and scans record which events (PRODUCT.md §4 "Notifications"), judged through
real evaluations (scorecard_refresh) of real criteria and data, with time frozen at the edges."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable

import pytest
import time_machine
from django.db import IntegrityError, connection, transaction

from readiness.alerts.models import Delivery, DeliveryItem, Event
from readiness.alerts.services import expiring_scan
from readiness.projects.models import Project
from readiness.scoring.services import scorecard_refresh, waiver_approve
from tests.alerts.conftest import T0, accuracy_criterion, email, go_then_no_go, push, webhook
from tests.conftest import Cast
from tests.factories import AttestationCriterionFactory, AttestationFactory, WaiverFactory

pytestmark = pytest.mark.django_db


def kinds(project: Project) -> list[str]:
    return sorted(Event.objects.filter(project=project).values_list("kind", flat=True))


def test_first_scorecard_is_not_a_decision_change(project: Project) -> None:
    accuracy_criterion(project)  # no data: missing, so the very first decision is no_go
    card = scorecard_refresh(project=project, now=T0)
    assert card.decision == "no_go"
    assert kinds(project) == []


def test_decision_change_records_old_and_new_decision(project: Project) -> None:
    go_then_no_go(project)
    event = Event.objects.get(project=project, kind="decision_changed")
    assert (event.decision_before, event.decision_after) == ("go", "no_go")
    assert event.details == {"old": "go", "new": "no_go"}
    assert event.summary == "decision changed from GO to NO-GO"


def test_blocker_regressing_to_fail_is_an_event_with_its_owner(project: Project) -> None:
    go_then_no_go(project)
    event = Event.objects.get(project=project, kind="criterion_regressed")
    assert (event.criterion, event.dimension, event.owner) == ("model_quality", "data_science", "alice")
    assert event.details["old_status"] == "pass" and event.details["new_status"] == "fail"
    assert event.summary.startswith("data_science/model_quality regressed to fail (was pass)")


def test_regression_without_decision_change_is_recorded_alone(project: Project) -> None:
    accuracy_criterion(project, key="always_failing", metric="recall")
    accuracy_criterion(project)
    push(project, 0.95, T0 - dt.timedelta(minutes=1))
    assert scorecard_refresh(project=project, now=T0).decision == "no_go"  # recall is missing
    push(project, 0.5, T0 + dt.timedelta(minutes=1))
    assert scorecard_refresh(project=project, now=T0 + dt.timedelta(minutes=2)).decision == "no_go"
    assert kinds(project) == ["criterion_regressed"]


def test_a_blocker_still_failing_is_not_a_new_regression(project: Project) -> None:
    go_then_no_go(project)
    push(project, 0.4, T0 + dt.timedelta(minutes=3))
    accuracy_criterion(project, key="second", metric="recall", severity="advisory")  # new digest
    scorecard_refresh(project=project, now=T0 + dt.timedelta(minutes=4))
    assert kinds(project) == ["criterion_regressed", "decision_changed"]


def test_a_new_failing_criterion_is_not_a_regression(project: Project) -> None:
    accuracy_criterion(project)
    push(project, 0.95, T0 - dt.timedelta(minutes=1))
    scorecard_refresh(project=project, now=T0)
    accuracy_criterion(project, key="recall_floor", metric="recall")
    push(project, 0.1, T0, metric="recall")
    scorecard_refresh(project=project, now=T0 + dt.timedelta(minutes=1))
    assert kinds(project) == ["decision_changed"]


def test_metric_data_gone_missing_is_an_event(project: Project) -> None:
    # Advisory: its missing data does not move the decision, so the event stands alone.
    accuracy_criterion(project, severity="advisory")
    push(project, 0.95, T0 - dt.timedelta(hours=1))
    assert scorecard_refresh(project=project, now=T0).decision == "go"
    # 23 h later the point is still inside the 24h window; one hour more and it has left it.
    scorecard_refresh(project=project, now=T0 + dt.timedelta(hours=22, minutes=59))
    assert kinds(project) == []
    scorecard_refresh(project=project, now=T0 + dt.timedelta(hours=23, minutes=1))
    event = Event.objects.get(project=project)
    assert event.kind == "data_missing"
    assert event.details["old_status"] == "pass" and event.details["new_status"] == "missing"
    assert "no accuracy data over 24h" in event.summary


def test_data_missing_from_the_start_is_not_an_event(project: Project) -> None:
    accuracy_criterion(project, severity="advisory")
    scorecard_refresh(project=project, now=T0)
    scorecard_refresh(project=project, now=T0 + dt.timedelta(days=2))  # the daily snapshot
    assert Event.objects.filter(project=project).count() == 0


def test_events_of_one_evaluation_go_in_one_delivery_per_channel(project: Project) -> None:
    hook = webhook(project, "https://hooks.example.com/T0/B0")
    mail = email(project, "ml-ops@example.com")
    go_then_no_go(project)
    for channel in (hook, mail):
        delivery = Delivery.objects.get(channel=channel)
        assert delivery.state == "pending"
        assert sorted(delivery.events.values_list("kind", flat=True)) == [
            "criterion_regressed",
            "decision_changed",
        ]


def test_disabled_channels_get_no_delivery(project: Project) -> None:
    webhook(project, "https://hooks.example.com/off", enabled=False)
    go_then_no_go(project)
    assert Event.objects.filter(project=project).count() == 2
    assert not Delivery.objects.exists()


def test_the_database_refuses_one_event_twice(project: Project) -> None:
    go_then_no_go(project)
    event = Event.objects.get(project=project, kind="decision_changed")
    with pytest.raises(IntegrityError), transaction.atomic():
        Event.objects.create(project=project, kind=event.kind, key=event.key, summary="again")


def test_the_database_refuses_two_notifications_of_one_event_on_one_channel(project: Project) -> None:
    hook = webhook(project, "https://hooks.example.com/T0/B0")
    go_then_no_go(project)
    item = DeliveryItem.objects.first()
    assert item is not None
    second = Delivery.objects.create(channel=hook)
    with pytest.raises(IntegrityError), transaction.atomic():
        DeliveryItem.objects.create(delivery=second, event=item.event, channel=hook)


# --- Expiry ---------------------------------------------------------------------------------------


@pytest.fixture
def attested(project: Project, cast: Cast) -> Project:
    """A model card attested at T0, valid for 30 days: it expires at T0 + 30 days."""
    criterion = AttestationCriterionFactory(
        project=project, key="model_card", dimension="data_science", valid_for_days=30
    )
    AttestationFactory(criterion=criterion, attested_by=cast.data_science, attested_at=T0)
    return project


@pytest.mark.parametrize(
    ("scan_at", "expected"),
    [
        (T0 + dt.timedelta(days=23) - dt.timedelta(seconds=1), 0),  # 7 days and 1 second ahead
        (T0 + dt.timedelta(days=23), 1),  # exactly 7 days ahead: within
        (T0 + dt.timedelta(days=30) - dt.timedelta(seconds=1), 1),  # its last second
        (T0 + dt.timedelta(days=30), 0),  # expired at this instant: no longer "expiring"
    ],
)
def test_attestation_expiring_within_7_days_at_the_edges(
    attested: Project, scan_at: dt.datetime, expected: int
) -> None:
    with time_machine.travel(scan_at, tick=False):
        assert expiring_scan() == expected
    assert Event.objects.filter(project=attested, kind="expiring").count() == expected


def test_expiry_event_names_the_attestation_its_owner_and_date(attested: Project) -> None:
    with time_machine.travel(T0 + dt.timedelta(days=25), tick=False):
        expiring_scan()
    event = Event.objects.get(project=attested)
    assert (event.criterion, event.owner) == ("model_card", "alice")
    assert event.summary == (
        "the attestation of data_science/model_card by alice expires on 2026-12-22T10:00+00:00 "
        "(in 5 days); re-attest before then"
    )


def test_expiry_scan_twice_records_each_expiry_once(attested: Project) -> None:
    webhook(attested, "https://hooks.example.com/T0/B0")
    with time_machine.travel(T0 + dt.timedelta(days=24), tick=False):
        assert expiring_scan() == 1
        assert expiring_scan() == 0
    with time_machine.travel(T0 + dt.timedelta(days=26), tick=False):
        assert expiring_scan() == 0
    assert Event.objects.filter(project=attested).count() == 1
    assert Delivery.objects.count() == 1


def test_re_attesting_moves_the_expiry_out_of_the_horizon(attested: Project, cast: Cast) -> None:
    criterion = attested.criteria.get(key="model_card")
    AttestationFactory(
        criterion=criterion, attested_by=cast.data_science, attested_at=T0 + dt.timedelta(days=20)
    )
    with time_machine.travel(T0 + dt.timedelta(days=25), tick=False):
        assert expiring_scan() == 0  # the newest attestation counts, and it runs until day 50


def test_attestation_without_cadence_never_expires(project: Project, cast: Cast) -> None:
    criterion = AttestationCriterionFactory(project=project, key="threat_model", valid_for_days=None)
    AttestationFactory(criterion=criterion, attested_by=cast.security, attested_at=T0)
    with time_machine.travel(T0 + dt.timedelta(days=3000), tick=False):
        assert expiring_scan() == 0


@pytest.mark.parametrize(
    ("days_before_end", "expected"),
    [(dt.timedelta(days=7, seconds=1), 0), (dt.timedelta(days=7), 1), (dt.timedelta(seconds=1), 1)],
)
def test_approved_waiver_expiring_within_7_days_at_the_edges(
    project: Project, cast: Cast, days_before_end: dt.timedelta, expected: int
) -> None:
    criterion = accuracy_criterion(project)
    ends = T0 + dt.timedelta(days=30)
    with time_machine.travel(T0, tick=False):
        waiver = WaiverFactory(criterion=criterion, requested_by=cast.member, expires_at=ends)
        waiver_approve(waiver=waiver, by=cast.data_science)
    with time_machine.travel(ends - days_before_end, tick=False):
        assert expiring_scan() == expected
    if expected:
        event = Event.objects.get(project=project, kind="expiring")
        assert event.key == f"waiver_expiring:{waiver.pk}"
        assert event.owner == "alice"


def test_pending_and_rejected_waivers_do_not_expire(project: Project, cast: Cast) -> None:
    criterion = accuracy_criterion(project)
    WaiverFactory(criterion=criterion, requested_by=cast.member, expires_at=T0 + dt.timedelta(days=3))
    WaiverFactory(
        criterion=criterion, requested_by=cast.member, status="rejected", expires_at=T0 + dt.timedelta(days=3)
    )
    with time_machine.travel(T0, tick=False):
        assert expiring_scan() == 0


def test_expiries_of_one_project_go_in_one_message_per_channel(attested: Project, cast: Cast) -> None:
    channel = webhook(attested, "https://hooks.example.com/T0/B0")
    criterion = accuracy_criterion(attested)
    with time_machine.travel(T0, tick=False):
        waiver = WaiverFactory(
            criterion=criterion, requested_by=cast.member, expires_at=T0 + dt.timedelta(days=27)
        )
        waiver_approve(waiver=waiver, by=cast.data_science)
    with time_machine.travel(T0 + dt.timedelta(days=24), tick=False):
        assert expiring_scan() == 2
    delivery = Delivery.objects.get(channel=channel)
    assert delivery.events.count() == 2


def test_retired_projects_are_not_scanned(attested: Project) -> None:
    Project.objects.filter(pk=attested.pk).update(stage="retired")
    with time_machine.travel(T0 + dt.timedelta(days=25), tick=False):
        assert expiring_scan() == 0


# --- Concurrency ---------------------------------------------------------------------------------


def at_once(count: int, work: Callable[[], object]) -> list[object]:
    """Run ``work`` in ``count`` threads released together, each on its own database connection."""
    start = threading.Barrier(count)
    results: list[object] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            start.wait(timeout=30)
            results.append(work())
        except BaseException as exc:  # re-raised below: a thread's failure must fail the test
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    return results


@pytest.mark.django_db(transaction=True)
def test_two_scans_at_once_record_each_expiry_once(attested: Project) -> None:
    webhook(attested, "https://hooks.example.com/T0/B0")
    with time_machine.travel(T0 + dt.timedelta(days=24), tick=False):
        assert sorted(at_once(2, expiring_scan)) == [0, 1]
    assert Event.objects.filter(project=attested).count() == 1
    assert Delivery.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_evaluations_at_once_record_one_decision_change(project: Project) -> None:
    webhook(project, "https://hooks.example.com/T0/B0")
    accuracy_criterion(project)
    push(project, 0.95, T0 - dt.timedelta(minutes=1))
    scorecard_refresh(project=project, now=T0)
    push(project, 0.5, T0 + dt.timedelta(minutes=1))
    later = T0 + dt.timedelta(minutes=2)
    decisions = at_once(2, lambda: scorecard_refresh(project=project, now=later).decision)
    assert decisions == ["no_go", "no_go"]
    assert kinds(project) == ["criterion_regressed", "decision_changed"]
    assert Delivery.objects.count() == 1
