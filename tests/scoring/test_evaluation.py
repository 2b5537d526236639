"""The evaluation service around the pure engine: gathering inputs from the database, storing
scorecards when the digest changes, decision changes, and the actions on criteria."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from readiness.audit.models import AuditEntry
from readiness.projects.services import token_create
from readiness.scoring.models import Scorecard, SignOff, Waiver
from readiness.scoring.services import (
    ActionConflict,
    attestation_create,
    criterion_clear_not_applicable,
    criterion_mark_not_applicable,
    scorecard_compute,
    scorecard_refresh,
    signoff_create,
    waiver_approve,
    waiver_reject,
    waiver_request,
)
from readiness.telemetry.models import MetricPoint
from tests.conftest import Cast
from tests.factories import AttestationCriterionFactory, MetricCriterionFactory

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def frozen() -> time_machine.Coordinates:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def push(cast: Cast, metric: str, *values: float, ago: dt.timedelta = dt.timedelta(minutes=1)) -> None:
    for value in values:
        MetricPoint.objects.create(project=cast.project, metric=metric, ts=timezone.now() - ago, value=value)


def blocker_keys(payload: dict) -> list[str | None]:
    return [b["criterion"] for b in payload["blockers"]]


def test_missing_metric_blocks_go(cast: Cast, frozen: object) -> None:
    MetricCriterionFactory(project=cast.project, key="p99_latency")
    scorecard = scorecard_refresh(project=cast.project)
    assert scorecard.decision == "no_go"
    blocker = next(b for b in scorecard.payload["blockers"] if b["criterion"] == "p99_latency")
    assert (blocker["dimension"], blocker["status"], blocker["owner"]) == ("engineering", "missing", "bob")


def test_pushed_data_within_threshold_turns_pilot_go(cast: Cast, frozen: object) -> None:
    MetricCriterionFactory(project=cast.project, key="p99_latency", threshold=300, warn_threshold=250)
    push(cast, "latency_ms", 120, 180, 240)
    scorecard = scorecard_refresh(project=cast.project)
    assert scorecard.target == "production"
    # A pilot project targets production, where sign-offs are required: evaluate for pilot too.
    pilot = scorecard_compute(project=cast.project, target="pilot")
    assert pilot.decision == "go"
    criterion = next(c for c in scorecard.payload["criteria"] if c["key"] == "p99_latency")
    assert criterion["status"] == "pass"
    assert criterion["threshold"] == 300


def test_scorecard_is_stored_only_when_the_digest_changes(
    cast: Cast, frozen: time_machine.Coordinates
) -> None:
    MetricCriterionFactory(project=cast.project, key="p99_latency")
    first = scorecard_refresh(project=cast.project)
    frozen.shift(dt.timedelta(minutes=5))
    assert scorecard_refresh(project=cast.project).pk == first.pk
    push(cast, "latency_ms", 100)
    second = scorecard_refresh(project=cast.project)
    assert second.pk != first.pk
    assert Scorecard.objects.filter(project=cast.project).count() == 2


def test_an_unchanged_project_still_gets_one_scorecard_a_day(
    cast: Cast, frozen: time_machine.Coordinates
) -> None:
    first = scorecard_refresh(project=cast.project)
    frozen.shift(dt.timedelta(hours=23, minutes=59))
    assert scorecard_refresh(project=cast.project).pk == first.pk
    frozen.shift(dt.timedelta(minutes=1))
    assert scorecard_refresh(project=cast.project).pk != first.pk


def test_decision_change_is_recorded_but_a_first_scorecard_is_none(cast: Cast, frozen: object) -> None:
    MetricCriterionFactory(project=cast.project, key="p99_latency")
    cast.project.stage = "prototype"
    cast.project.save()
    first = scorecard_refresh(project=cast.project)
    assert first.decision == "no_go" and not first.is_decision_change
    push(cast, "latency_ms", 100)
    second = scorecard_refresh(project=cast.project)
    assert second.decision == "go"
    assert second.is_decision_change and second.previous_decision == "no_go"


def test_scorecards_are_immutable(cast: Cast, frozen: object) -> None:
    scorecard = scorecard_refresh(project=cast.project)
    scorecard.decision = "go"
    with pytest.raises(ValueError, match="immutable"):
        scorecard.save()


def test_attestation_by_the_responsible_person_passes_the_criterion(cast: Cast, frozen: object) -> None:
    criterion = AttestationCriterionFactory(project=cast.project, key="threat_model", evidence_required=True)
    with pytest.raises(ValidationError):
        attestation_create(criterion=criterion, by=cast.security)
    attestation_create(criterion=criterion, by=cast.security, evidence_url="https://wiki.example.com/tm")
    payload = Scorecard.objects.filter(project=cast.project).latest().payload
    assert next(c for c in payload["criteria"] if c["key"] == "threat_model")["status"] == "pass"
    assert AuditEntry.objects.filter(action="attestation.create", actor=cast.security).count() == 1


@pytest.mark.parametrize("who", ["engineering", "member", "outsider", "leader"])
def test_only_the_responsible_person_attests(cast: Cast, who: str) -> None:
    criterion = AttestationCriterionFactory(project=cast.project, dimension="security")
    with pytest.raises(PermissionDenied):
        attestation_create(criterion=criterion, by=getattr(cast, who), evidence_url="https://e.example.com")
    assert not criterion.attestations.exists()


def test_an_attestation_through_a_token_is_automated(cast: Cast) -> None:
    criterion = AttestationCriterionFactory(project=cast.project)
    token, _ = token_create(project=cast.project, name="ci", scopes=["attest"])
    attestation = attestation_create(criterion=criterion, token=token)
    assert attestation.automated and attestation.attested_by is None


def test_a_token_without_attest_scope_cannot_attest(cast: Cast) -> None:
    criterion = AttestationCriterionFactory(project=cast.project)
    token, _ = token_create(project=cast.project, name="ci", scopes=["metrics:write"])
    with pytest.raises(PermissionDenied):
        attestation_create(criterion=criterion, token=token)


def test_metric_criteria_cannot_be_attested(cast: Cast) -> None:
    criterion = MetricCriterionFactory(project=cast.project)
    with pytest.raises(ValidationError):
        attestation_create(criterion=criterion, by=cast.engineering)


def test_approved_waiver_waives_and_is_never_approved_by_its_requester(cast: Cast, frozen: object) -> None:
    criterion = MetricCriterionFactory(project=cast.project, key="p99_latency")
    waiver = waiver_request(
        criterion=criterion,
        by=cast.engineering,
        reason="Load test next sprint",
        expires_at=NOW + dt.timedelta(days=14),
    )
    with pytest.raises(PermissionDenied):
        waiver_approve(waiver=waiver, by=cast.engineering)
    with pytest.raises(PermissionDenied):
        waiver_approve(waiver=waiver, by=cast.product)  # responsible for another dimension
    waiver_approve(waiver=waiver, by=cast.admin)
    assert Waiver.objects.get(pk=waiver.pk).status == "approved"
    payload = Scorecard.objects.filter(project=cast.project).latest().payload
    assert next(c for c in payload["criteria"] if c["key"] == "p99_latency")["status"] == "waived"
    with pytest.raises(ActionConflict):
        waiver_reject(waiver=waiver, by=cast.admin)


@pytest.mark.parametrize(
    ("reason", "days", "field"),
    [("", 10, "reason"), ("ok", 0, "expires_at"), ("ok", -1, "expires_at"), ("ok", 91, "expires_at")],
)
def test_waiver_request_validation(cast: Cast, frozen: object, reason: str, days: int, field: str) -> None:
    criterion = MetricCriterionFactory(project=cast.project)
    with pytest.raises(ValidationError) as err:
        waiver_request(
            criterion=criterion, by=cast.member, reason=reason, expires_at=NOW + dt.timedelta(days=days)
        )
    assert field in err.value.message_dict
    assert not Waiver.objects.exists()


def test_outsiders_cannot_request_waivers(cast: Cast) -> None:
    criterion = MetricCriterionFactory(project=cast.project)
    with pytest.raises(PermissionDenied):
        waiver_request(
            criterion=criterion,
            by=cast.outsider,
            reason="x",
            expires_at=timezone.now() + dt.timedelta(days=1),
        )


def test_not_applicable_leaves_the_criterion_out_and_can_be_undone(cast: Cast, frozen: object) -> None:
    criterion = MetricCriterionFactory(project=cast.project, key="p99_latency")
    criterion_mark_not_applicable(
        criterion=criterion, by=cast.engineering, reason="batch model, no latency SLO"
    )
    payload = Scorecard.objects.filter(project=cast.project).latest().payload
    assert payload["dimensions"]["engineering"]["status"] == "pass"
    assert "p99_latency" not in blocker_keys(payload)
    criterion_clear_not_applicable(criterion=criterion, by=cast.engineering)
    assert "p99_latency" in blocker_keys(Scorecard.objects.filter(project=cast.project).latest().payload)


def test_signoff_is_refused_while_the_dimension_fails(cast: Cast, frozen: object) -> None:
    MetricCriterionFactory(project=cast.project, key="p99_latency")
    with pytest.raises(ActionConflict):
        signoff_create(project=cast.project, dimension="engineering", by=cast.engineering)
    assert not SignOff.objects.exists()


def test_signoff_only_by_the_dimensions_responsible_person(cast: Cast) -> None:
    with pytest.raises(PermissionDenied):
        signoff_create(project=cast.project, dimension="engineering", by=cast.product)


def test_signoff_goes_stale_when_a_status_of_its_dimension_changes(cast: Cast, frozen: object) -> None:
    MetricCriterionFactory(project=cast.project, key="p99_latency")
    push(cast, "latency_ms", 100)
    for dimension in ("data_science", "engineering", "product", "security"):
        signoff_create(project=cast.project, dimension=dimension, by=cast.owner(dimension))
    assert scorecard_refresh(project=cast.project).decision == "go"
    push(cast, "latency_ms", 5000)  # p99 over the window now fails
    scorecard = scorecard_refresh(project=cast.project)
    assert scorecard.decision == "no_go"
    assert scorecard.payload["dimensions"]["engineering"]["signoff"]["state"] == "stale"
    assert {"criterion": None, "status": "signoff_stale"}.items() <= next(
        b for b in scorecard.payload["blockers"] if b["criterion"] is None
    ).items()


def test_prohibited_tier_is_never_go(cast: Cast) -> None:
    cast.project.risk_tier = "prohibited"
    cast.project.stage = "prototype"
    cast.project.save()
    scorecard = scorecard_refresh(project=cast.project)
    assert scorecard.decision == "no_go"
    assert scorecard.payload["blockers"][0]["status"] == "prohibited"


def test_signing_off_twice_on_the_same_results_is_a_conflict(cast: Cast, frozen: object) -> None:
    signoff_create(project=cast.project, dimension="product", by=cast.product)
    with pytest.raises(ActionConflict, match="already signed off"):
        signoff_create(project=cast.project, dimension="product", by=cast.product)
    assert SignOff.objects.filter(dimension="product").count() == 1
