"""Act endpoints: attestations, sign-offs, waivers and not-applicable (PRODUCT.md §3 "Act"). Each
action is taken through the same service as the pages and re-evaluates the project at once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.utils import timezone

from readiness.scoring.models import Attestation, Criterion, Scorecard, SignOff, Waiver
from tests.api.conftest import World, assert_error
from tests.factories import MetricPointFactory, WaiverFactory

PROJECT = "/api/v1/projects/fraud-detector"


def post(client: Any, url: str, body: dict[str, Any] | None = None) -> Any:
    return client.post(url, data=body or {}, content_type="application/json")


def latest_status(world: World, key: str) -> str:
    payload = Scorecard.objects.filter(project=world.project).latest().payload
    return next(c["status"] for c in payload["criteria"] if c["key"] == key)


def in_days(days: float) -> str:
    return (timezone.now() + dt.timedelta(days=days)).isoformat()


# --- Attestations ---------------------------------------------------------------------------------

ATTESTATION = {"criterion": "model_card", "evidence_url": "https://wiki.example.com/card", "note": "v7"}


def test_responsible_person_attests_and_the_project_is_re_evaluated(world: World, as_user: Callable) -> None:
    response = post(as_user(world.cast.data_science), f"{PROJECT}/attestations", ATTESTATION)
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "criterion", "by", "automated", "evidence_url", "note", "attested_at"}
    assert body["criterion"] == "model_card" and body["by"] == "alice" and body["automated"] is False
    assert body["evidence_url"] == "https://wiki.example.com/card" and body["note"] == "v7"
    assert Attestation.objects.get(pk=body["id"]).attested_by == world.cast.data_science
    assert latest_status(world, "model_card") == "pass"


def test_admin_attests_any_dimension(world: World, as_user: Callable) -> None:
    assert post(as_user(world.cast.admin), f"{PROJECT}/attestations", ATTESTATION).status_code == 201


def test_token_attestation_is_automated(world: World, bearer: Callable) -> None:
    response = post(bearer(world.project, ["attest"]), f"{PROJECT}/attestations", ATTESTATION)
    assert response.status_code == 201
    body = response.json()
    assert body["automated"] is True and body["by"].startswith("token:")


@pytest.mark.parametrize("who", ["member", "leader", "engineering"])
def test_others_may_not_attest(world: World, as_user: Callable, who: str) -> None:
    response = post(as_user(getattr(world.cast, who)), f"{PROJECT}/attestations", ATTESTATION)
    assert_error(response, 403, "permission_denied")
    assert not Attestation.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"criterion": "no_such_check"}, "criterion"),
        ({"criterion": "p99_latency"}, "criterion"),  # a metric criterion is measured, not attested
        ({"criterion": "Model Card"}, "criterion"),
        ({}, "criterion"),
        ({"criterion": "model_card", "evidence_url": "ftp://files.example.com/card"}, "evidence_url"),
        ({"criterion": "model_card", "note": ["not", "text"]}, "note"),
    ],
)
def test_bad_attestation_is_400_naming_the_field(
    world: World, bearer: Callable, body: dict[str, Any], field: str
) -> None:
    response = post(bearer(world.project, ["attest"]), f"{PROJECT}/attestations", body)
    assert field in assert_error(response, 400, "invalid_input")["details"]


# --- Sign-offs ------------------------------------------------------------------------------------


def test_signoff_is_409_while_the_dimension_fails(world: World, as_user: Callable) -> None:
    response = post(as_user(world.cast.engineering), f"{PROJECT}/signoffs", {"dimension": "engineering"})
    assert "failing" in assert_error(response, 409, "conflict")["message"]
    assert not SignOff.objects.exists()


def test_signoff_is_201_once_the_data_passes(world: World, as_user: Callable) -> None:
    client = as_user(world.cast.engineering)
    assert post(client, f"{PROJECT}/signoffs", {"dimension": "engineering"}).status_code == 409
    MetricPointFactory(project=world.project, metric="latency_ms", value=120)
    response = post(client, f"{PROJECT}/signoffs", {"dimension": "engineering", "note": "SLOs met"})
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "project", "dimension", "by", "note", "signed_at"}
    assert body["dimension"] == "engineering" and body["by"] == "bob" and body["note"] == "SLOs met"
    payload = Scorecard.objects.filter(project=world.project).latest().payload
    assert payload["dimensions"]["engineering"]["signoff"]["state"] == "valid"


def test_admin_signs_off_any_dimension(world: World, as_user: Callable) -> None:
    assert post(as_user(world.cast.admin), f"{PROJECT}/signoffs", {"dimension": "product"}).status_code == 201


@pytest.mark.parametrize("who", ["member", "leader", "data_science"])
def test_only_the_dimensions_responsible_person_signs_off(world: World, as_user: Callable, who: str) -> None:
    response = post(as_user(getattr(world.cast, who)), f"{PROJECT}/signoffs", {"dimension": "product"})
    assert_error(response, 403, "permission_denied")


@pytest.mark.parametrize("body", [{"dimension": "marketing"}, {}, {"dimension": "product", "note": None}])
def test_bad_signoff_is_400(world: World, as_user: Callable, body: dict[str, Any]) -> None:
    assert_error(post(as_user(world.cast.product), f"{PROJECT}/signoffs", body), 400, "invalid_input")


# --- Waivers --------------------------------------------------------------------------------------


def test_member_requests_a_pending_waiver(world: World, as_user: Callable) -> None:
    body = {"criterion": "p99_latency", "reason": "Load test next sprint", "expires_at": in_days(30)}
    response = post(as_user(world.cast.member), f"{PROJECT}/waivers", body)
    assert response.status_code == 201
    waiver = response.json()
    assert waiver["status"] == "pending" and waiver["requested_by"] == "mia"
    assert waiver["criterion"] == "p99_latency" and waiver["dimension"] == "engineering"
    assert waiver["approved_by"] is None and waiver["decided_by"] is None and waiver["decided_at"] is None
    assert Waiver.objects.get(pk=waiver["id"]).reason == "Load test next sprint"


@pytest.mark.parametrize("who", ["leader"])
def test_non_members_may_not_request_waivers(world: World, as_user: Callable, who: str) -> None:
    body = {"criterion": "p99_latency", "reason": "because", "expires_at": in_days(30)}
    assert_error(post(as_user(getattr(world.cast, who)), f"{PROJECT}/waivers", body), 403)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"criterion": "nope", "reason": "r", "expires_at": in_days(3)}, "criterion"),
        ({"criterion": "p99_latency", "reason": "r", "expires_at": in_days(-1)}, "expires_at"),
        ({"criterion": "p99_latency", "reason": "r", "expires_at": in_days(91)}, "expires_at"),
        ({"criterion": "p99_latency", "reason": "r", "expires_at": "next week"}, "expires_at"),
        ({"criterion": "p99_latency", "expires_at": in_days(3)}, "reason"),
        ({"criterion": "p99_latency", "reason": "   ", "expires_at": in_days(3)}, "reason"),
    ],
)
def test_bad_waiver_request_is_400_naming_the_field(
    world: World, as_user: Callable, body: dict[str, Any], field: str
) -> None:
    response = post(as_user(world.cast.member), f"{PROJECT}/waivers", body)
    assert field in assert_error(response, 400, "invalid_input")["details"]


def test_responsible_person_approves_and_the_criterion_is_waived(world: World, as_user: Callable) -> None:
    response = post(as_user(world.cast.engineering), f"/api/v1/waivers/{world.waiver.pk}/approve")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "approved" and body["approved_by"] == "bob" and body["decided_by"] == "bob"
    assert latest_status(world, "p99_latency") == "waived"


def test_responsible_person_rejects(world: World, as_user: Callable) -> None:
    response = post(as_user(world.cast.engineering), f"/api/v1/waivers/{world.waiver.pk}/reject")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "rejected" and body["approved_by"] is None and body["decided_by"] == "bob"


def test_admin_approves_any_waiver(world: World, as_user: Callable) -> None:
    assert post(as_user(world.cast.admin), f"/api/v1/waivers/{world.waiver.pk}/approve").status_code == 200


def test_requester_may_not_approve_their_own_waiver(world: World, as_user: Callable) -> None:
    own = WaiverFactory(criterion=world.p99_latency, requested_by=world.cast.engineering)
    response = post(as_user(world.cast.engineering), f"/api/v1/waivers/{own.pk}/approve")
    assert_error(response, 403, "permission_denied")
    assert Waiver.objects.get(pk=own.pk).status == "pending"


@pytest.mark.parametrize("who", ["member", "leader", "data_science"])
@pytest.mark.parametrize("action", ["approve", "reject"])
def test_others_may_not_decide_waivers(world: World, as_user: Callable, who: str, action: str) -> None:
    response = post(as_user(getattr(world.cast, who)), f"/api/v1/waivers/{world.waiver.pk}/{action}")
    assert_error(response, 403, "permission_denied")


@pytest.mark.parametrize("first", ["approve", "reject"])
@pytest.mark.parametrize("second", ["approve", "reject"])
def test_deciding_a_decided_waiver_is_409(world: World, as_user: Callable, first: str, second: str) -> None:
    client = as_user(world.cast.engineering)
    assert post(client, f"/api/v1/waivers/{world.waiver.pk}/{first}").status_code == 200
    assert_error(post(client, f"/api/v1/waivers/{world.waiver.pk}/{second}"), 409, "conflict")


def test_approving_an_expired_waiver_is_400(world: World, as_user: Callable) -> None:
    Waiver.objects.filter(pk=world.waiver.pk).update(expires_at=timezone.now() - dt.timedelta(minutes=1))
    response = post(as_user(world.cast.engineering), f"/api/v1/waivers/{world.waiver.pk}/approve")
    assert "expires_at" in assert_error(response, 400)["details"]


@pytest.mark.parametrize("waiver_id", ["999999", "9" * 30])  # the second overflows a bigint
def test_unknown_waiver_is_404(world: World, as_user: Callable, waiver_id: str) -> None:
    assert_error(post(as_user(world.cast.admin), f"/api/v1/waivers/{waiver_id}/approve"), 404)


# --- Not applicable -------------------------------------------------------------------------------

NA_URL = f"{PROJECT}/criteria/model_card/not-applicable"


def test_not_applicable_is_marked_then_undone(world: World, as_user: Callable) -> None:
    client = as_user(world.cast.data_science)
    response = post(client, NA_URL, {"reason": "No model: rules only"})
    assert response.status_code == 200
    assert response.json() == {
        "criterion": "model_card",
        "dimension": "data_science",
        "not_applicable": True,
        "reason": "No model: rules only",
    }
    assert latest_status(world, "model_card") == "not_applicable"
    response = client.delete(NA_URL)
    assert response.status_code == 204
    assert Criterion.objects.get(pk=world.model_card.pk).not_applicable_reason is None
    assert latest_status(world, "model_card") == "missing"


def test_admin_marks_any_criterion_not_applicable(world: World, as_user: Callable) -> None:
    assert post(as_user(world.cast.admin), NA_URL, {"reason": "n/a"}).status_code == 200


@pytest.mark.parametrize("who", ["member", "leader", "engineering"])
def test_others_may_not_mark_not_applicable(world: World, as_user: Callable, who: str) -> None:
    client = as_user(getattr(world.cast, who))
    assert_error(post(client, NA_URL, {"reason": "n/a"}), 403, "permission_denied")
    assert_error(client.delete(NA_URL), 403, "permission_denied")


@pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": "   "}, {"reason": ["a"]}])
def test_not_applicable_needs_a_reason(world: World, as_user: Callable, body: dict[str, Any]) -> None:
    response = post(as_user(world.cast.data_science), NA_URL, body)
    assert "reason" in assert_error(response, 400, "invalid_input")["details"]


def test_not_applicable_on_an_unknown_criterion_is_404(world: World, as_user: Callable) -> None:
    client = as_user(world.cast.admin)
    assert_error(post(client, f"{PROJECT}/criteria/nope/not-applicable", {"reason": "n/a"}), 404)
    assert_error(client.delete(f"{PROJECT}/criteria/nope/not-applicable"), 404)
