"""Read endpoints: projects, scorecard, history and the deploy gate (PRODUCT.md §3 "Read")."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.utils import timezone
from prometheus_client import REGISTRY

from readiness.alerts.models import Event
from readiness.projects.models import Project
from readiness.scoring.models import Criterion, Scorecard, Waiver
from readiness.scoring.services import scorecard_for_gate, scorecard_refresh, signoff_create, waiver_approve
from tests.api.conftest import World, assert_error
from tests.conftest import Cast
from tests.factories import (
    AttestationFactory,
    MetricCriterionFactory,
    MetricPointFactory,
    ProjectFactory,
)

READERS = ["admin", "leader", "member", "data_science", "security"]
READ_PATHS = ["/", "/scorecard", "/scorecards", "/metrics/latency_ms", "/gate"]


def store_scorecard(project: Any, decision: str, at: dt.datetime, target: str = "production") -> Scorecard:
    """A stored scorecard with a recognisable payload (history tests need many, at chosen times)."""
    payload = {
        "project": project.slug,
        "target": target,
        "decision": decision,
        "computed_at": at.isoformat(),
        "dimensions": {},
        "criteria": [],
        "blockers": [],
        "ml_test_score": None,
    }
    return Scorecard.objects.create(
        project=project, target=target, decision=decision, computed_at=at, digest="d", payload=payload
    )


# --- Who reads ------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", READERS)
@pytest.mark.parametrize("path", READ_PATHS)
def test_people_with_read_access_read_every_endpoint(
    world: World, as_user: Callable, who: str, path: str
) -> None:
    response = as_user(getattr(world.cast, who)).get(f"/api/v1/projects/fraud-detector{path}")
    assert response.status_code in (200, 412), response.content  # the gate says no-go with 412


# --- Project list ---------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["admin", "leader"])
def test_admin_and_leadership_list_every_project(world: World, as_user: Callable, who: str) -> None:
    slugs = [p["slug"] for p in as_user(getattr(world.cast, who)).get("/api/v1/projects/").json()]
    assert slugs == ["churn-model", "fraud-detector"]


@pytest.mark.parametrize("who", ["member", "engineering"])
def test_team_members_list_only_their_teams_projects(world: World, as_user: Callable, who: str) -> None:
    slugs = [p["slug"] for p in as_user(getattr(world.cast, who)).get("/api/v1/projects/").json()]
    assert slugs == ["fraud-detector"]


def test_outsider_lists_no_project(world: World, as_user: Callable) -> None:
    response = as_user(world.cast.outsider).get("/api/v1/projects/")
    assert response.status_code == 200 and response.json() == []


def test_token_lists_only_its_own_project(world: World, bearer: Callable) -> None:
    response = bearer(world.project, ["scorecard:read"]).get("/api/v1/projects/")
    assert [p["slug"] for p in response.json()] == ["fraud-detector"]


def test_token_without_read_scope_may_not_list(world: World, bearer: Callable) -> None:
    assert_error(bearer(world.project, ["metrics:write"]).get("/api/v1/projects/"), 403)


def test_project_list_items_carry_the_latest_decision(world: World, as_user: Callable) -> None:
    store_scorecard(world.project, "go", timezone.now() - dt.timedelta(hours=2))
    store_scorecard(world.project, "no_go", timezone.now() - dt.timedelta(hours=1))
    body = as_user(world.cast.member).get("/api/v1/projects/").json()
    assert body == [
        {
            "slug": "fraud-detector",
            "name": "Fraud detector",
            "stage": "pilot",
            "risk_tier": "high",
            "decision": "no_go",
        }
    ]


def test_project_never_evaluated_has_a_null_decision(world: World, as_user: Callable) -> None:
    body = as_user(world.cast.admin).get("/api/v1/projects/").json()
    assert {p["slug"]: p["decision"] for p in body} == {"churn-model": None, "fraud-detector": None}


@pytest.mark.parametrize("who", ["admin", "leader", "member"])
def test_project_list_query_count_does_not_grow_with_projects(
    cast: Cast, as_user: Callable, django_assert_max_num_queries: Callable, who: str
) -> None:
    client = as_user(getattr(cast, who))

    def add_projects(n: int) -> None:
        for _ in range(n):
            project = ProjectFactory(team=cast.project.team)
            store_scorecard(project, "go", timezone.now())

    add_projects(2)
    # Session, user, leadership check, and one query for the list with its decisions.
    with django_assert_max_num_queries(4):
        assert len(client.get("/api/v1/projects/").json()) == 3
    add_projects(27)
    with django_assert_max_num_queries(4):
        assert len(client.get("/api/v1/projects/").json()) == 30


# --- Project detail -------------------------------------------------------------------------------


def test_project_detail_names_the_responsible_people_and_latest_decision(
    world: World, as_user: Callable
) -> None:
    world.project.description = "Scores card payments"
    world.project.target_date = dt.date(2027, 3, 1)
    world.project.save()
    store_scorecard(world.project, "go", timezone.now())
    body = as_user(world.cast.leader).get("/api/v1/projects/fraud-detector/").json()
    assert body == {
        "slug": "fraud-detector",
        "name": "Fraud detector",
        "description": "Scores card payments",
        "team": "fraud",
        "team_name": "Fraud",
        "stage": "pilot",
        "risk_tier": "high",
        "target_date": "2027-03-01",
        "require_signoff_for_pilot": False,
        "owners": {"data_science": "alice", "engineering": "bob", "product": "carol", "security": "dave"},
        "decision": "go",
    }


def test_project_detail_shows_an_unassigned_dimension_as_null(world: World, as_user: Callable) -> None:
    world.project.owner_product = None
    world.project.save()
    body = as_user(world.cast.admin).get("/api/v1/projects/fraud-detector/").json()
    assert body["owners"]["product"] is None and body["decision"] is None


# --- Scorecard ------------------------------------------------------------------------------------


def test_scorecard_is_the_latest_stored_payload(world: World, bearer: Callable) -> None:
    stored = scorecard_refresh(project=world.project)
    body = bearer(world.project, ["scorecard:read"]).get("/api/v1/projects/fraud-detector/scorecard").json()
    assert body == stored.payload
    assert set(body) == {
        *("project", "target", "decision", "computed_at"),
        *("dimensions", "criteria", "blockers", "ml_test_score"),
    }


def test_scorecard_of_a_never_evaluated_project_is_evaluated_and_stored(
    world: World, as_user: Callable
) -> None:
    body = as_user(world.cast.member).get("/api/v1/projects/fraud-detector/scorecard").json()
    assert body["target"] == "production"
    assert Scorecard.objects.get(project=world.project).payload == body


def pilot_ready(world: World) -> None:
    """Every pilot criterion of the world passes: fast enough, and the model card attested."""
    MetricPointFactory(project=world.project, metric="latency_ms", value=120)
    AttestationFactory(criterion=world.model_card, attested_by=world.cast.data_science)


def test_scorecard_for_another_target_is_evaluated_on_the_fly(world: World, as_user: Callable) -> None:
    pilot_ready(world)
    stored = scorecard_refresh(project=world.project)
    body = as_user(world.cast.member).get("/api/v1/projects/fraud-detector/scorecard?target=pilot").json()
    assert body["target"] == "pilot" and body["decision"] == "go"
    assert stored.target == "production" and stored.decision == "no_go"
    assert Scorecard.objects.filter(project=world.project).count() == 1


@pytest.mark.parametrize("target", ["retired", "prototype", "PILOT"])
def test_scorecard_for_an_unknown_target_is_400(world: World, as_user: Callable, target: str) -> None:
    response = as_user(world.cast.member).get(f"/api/v1/projects/fraud-detector/scorecard?target={target}")
    assert "target" in assert_error(response, 400, "invalid_input")["details"]


# --- History --------------------------------------------------------------------------------------


@pytest.fixture
def sixty_scorecards(world: World) -> list[Scorecard]:
    start = timezone.now() - dt.timedelta(days=60)
    return [
        store_scorecard(world.project, "go" if i % 2 else "no_go", start + dt.timedelta(days=i))
        for i in range(60)
    ]


def test_history_is_newest_first_fifty_a_page(
    world: World, as_user: Callable, sixty_scorecards: list[Scorecard]
) -> None:
    client = as_user(world.cast.member)
    first = client.get("/api/v1/projects/fraud-detector/scorecards").json()
    assert set(first) == {"count", "next", "previous", "results"}
    assert first["count"] == 60 and len(first["results"]) == 50 and first["previous"] is None
    newest = [s.payload for s in reversed(sixty_scorecards)]
    assert first["results"] == newest[:50]
    second = client.get(first["next"]).json()
    assert second["results"] == newest[50:] and second["next"] is None and second["previous"]


def test_history_since_keeps_scorecards_computed_at_or_after_it(
    world: World, as_user: Callable, sixty_scorecards: list[Scorecard]
) -> None:
    since = sixty_scorecards[55].computed_at
    response = as_user(world.cast.member).get(
        "/api/v1/projects/fraud-detector/scorecards", {"since": since.isoformat()}
    )
    body = response.json()
    assert body["count"] == 5
    assert [r["computed_at"] for r in body["results"]] == [
        s.computed_at.isoformat() for s in reversed(sixty_scorecards[55:])
    ]


def test_history_since_accepts_an_offset_whose_plus_was_not_escaped(
    world: World, as_user: Callable, sixty_scorecards: list[Scorecard]
) -> None:
    since = sixty_scorecards[58].computed_at.replace(microsecond=0) + dt.timedelta(seconds=1)
    raw = since.isoformat().replace("+", " ")  # what "?since=...+00:00" unescaped becomes
    response = as_user(world.cast.member).get("/api/v1/projects/fraud-detector/scorecards", {"since": raw})
    assert response.json()["count"] == 1


@pytest.mark.parametrize("since", ["yesterday", "2026-13-01T00:00:00Z", "1700000000"])
def test_history_with_a_bad_since_is_400(world: World, as_user: Callable, since: str) -> None:
    response = as_user(world.cast.member).get("/api/v1/projects/fraud-detector/scorecards", {"since": since})
    assert "since" in assert_error(response, 400, "invalid_input")["details"]


def test_history_with_a_bad_page_is_400(world: World, as_user: Callable) -> None:
    response = as_user(world.cast.member).get("/api/v1/projects/fraud-detector/scorecards?page=zero")
    assert "page" in assert_error(response, 400)["details"]


def test_history_page_past_the_end_is_404(
    world: World, as_user: Callable, sixty_scorecards: list[Scorecard]
) -> None:
    assert_error(as_user(world.cast.member).get("/api/v1/projects/fraud-detector/scorecards?page=3"), 404)


def test_history_query_count_does_not_grow_with_scorecards(
    world: World, as_user: Callable, django_assert_max_num_queries: Callable
) -> None:
    client = as_user(world.cast.member)
    for i in range(3):
        store_scorecard(world.project, "go", timezone.now() - dt.timedelta(hours=i))
    with django_assert_max_num_queries(6):
        client.get("/api/v1/projects/fraud-detector/scorecards")
    for i in range(3, 45):
        store_scorecard(world.project, "go", timezone.now() - dt.timedelta(hours=i))
    with django_assert_max_num_queries(6):
        assert len(client.get("/api/v1/projects/fraud-detector/scorecards").json()["results"]) == 45


# --- Gate -----------------------------------------------------------------------------------------


@pytest.fixture
def gate_client(world: World, bearer: Callable) -> Client:
    pilot_ready(world)
    return bearer(world.project, ["scorecard:read"])


def test_gate_is_200_when_go(gate_client: Client) -> None:
    response = gate_client.get("/api/v1/projects/fraud-detector/gate?target=pilot")
    assert response.status_code == 200
    assert response.json()["decision"] == "go" and response.json()["blockers"] == []


def test_gate_is_412_with_blockers_when_no_go(gate_client: Client) -> None:
    response = gate_client.get("/api/v1/projects/fraud-detector/gate?target=production")
    assert response.status_code == 412
    body = response.json()
    assert body["decision"] == "no_go"
    assert {b["status"] for b in body["blockers"]} == {"signoff_missing"}
    assert {b["owner"] for b in body["blockers"]} == {"alice", "bob", "carol", "dave"}


def test_gate_go_and_no_go_bodies_have_the_same_shape(gate_client: Client) -> None:
    go = gate_client.get("/api/v1/projects/fraud-detector/gate?target=pilot").json()
    no_go = gate_client.get("/api/v1/projects/fraud-detector/gate?target=production").json()
    assert (
        set(go)
        == set(no_go)
        == {
            *("project", "target", "decision", "computed_at"),
            *("dimensions", "criteria", "blockers", "ml_test_score"),
        }
    )
    assert set(go["dimensions"]) == set(no_go["dimensions"])


def test_gate_turns_200_once_every_dimension_is_signed_off(world: World, gate_client: Client) -> None:
    assert gate_client.get("/api/v1/projects/fraud-detector/gate").status_code == 412
    for dimension in ("data_science", "engineering", "product", "security"):
        signoff_create(project=world.project, dimension=dimension, by=world.cast.owner(dimension))
    response = gate_client.get("/api/v1/projects/fraud-detector/gate")
    assert response.status_code == 200, response.json()["blockers"]


def test_gate_with_a_bad_target_is_400(gate_client: Client) -> None:
    assert_error(gate_client.get("/api/v1/projects/fraud-detector/gate?target=staging"), 400)


def test_prohibited_project_gate_is_412_with_a_prohibited_blocker(world: World, gate_client: Client) -> None:
    world.project.risk_tier = "prohibited"
    world.project.save()
    response = gate_client.get("/api/v1/projects/fraud-detector/gate?target=pilot")
    assert response.status_code == 412
    assert {"dimension": None, "criterion": None, "status": "prohibited"}.items() <= response.json()[
        "blockers"
    ][0].items()


# --- The gate never answers from stale evidence (PRODUCT.md §3) ------------------------------------

T0 = dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.UTC)
WAIVER_ENDS = T0 + dt.timedelta(hours=1)
GATE = "/api/v1/projects/fraud-detector/gate"


def evaluations() -> float:
    """Evaluations run so far in this process (the histogram every scorecard_refresh observes)."""
    return REGISTRY.get_sample_value("readiness_evaluation_duration_seconds_count") or 0.0


@pytest.fixture
def clock() -> Iterator[time_machine.Coordinates]:
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


@pytest.fixture
def waived(world: World, clock: time_machine.Coordinates, bearer: Callable) -> Client:
    """fraud-detector as a prototype (target pilot: no sign-offs needed), go at T0 only thanks to an
    approved waiver of p99_latency (it has no data: missing) ending at WAIVER_ENDS; the approval stored
    that go scorecard at T0. Returns a gate client (a token with ``scorecard:read``)."""
    Project.objects.filter(pk=world.project.pk).update(stage="prototype")
    AttestationFactory(criterion=world.model_card, attested_by=world.cast.data_science)
    Waiver.objects.filter(pk=world.waiver.pk).update(expires_at=WAIVER_ENDS)
    world.waiver.refresh_from_db()
    waiver_approve(waiver=world.waiver, by=world.cast.engineering)
    assert list(Scorecard.objects.values_list("decision", "computed_at")) == [("go", T0)]
    return bearer(world.project, ["scorecard:read"])


def test_gate_is_412_a_second_after_the_waiver_that_made_it_go_expired(
    waived: Client, clock: time_machine.Coordinates
) -> None:
    clock.move_to(WAIVER_ENDS - dt.timedelta(seconds=1))
    assert waived.get(GATE).status_code == 200
    clock.move_to(WAIVER_ENDS + dt.timedelta(seconds=1))
    response = waived.get(GATE)
    assert response.status_code == 412
    assert {(b["criterion"], b["status"]) for b in response.json()["blockers"]} == {
        ("p99_latency", "missing")
    }
    # Stored like any evaluation: a new scorecard, and its decision change recorded once.
    assert list(Scorecard.objects.values_list("decision", "computed_at")) == [
        ("no_go", WAIVER_ENDS + dt.timedelta(seconds=1)),
        ("go", T0),
    ]
    assert waived.get(GATE).status_code == 412
    assert Scorecard.objects.count() == 2
    assert Event.objects.filter(kind="decision_changed").count() == 1


def test_gate_counts_an_expiry_at_once_even_right_after_an_evaluation(
    waived: Client, world: World, clock: time_machine.Coordinates
) -> None:
    # The periodic evaluation ran 30 s before the waiver ended: within the minute, but the waiver's end
    # is an instant known in advance, and the gate does not wait for the next evaluation to see it.
    clock.move_to(WAIVER_ENDS - dt.timedelta(seconds=30))
    scorecard_refresh(project=world.project)
    clock.move_to(WAIVER_ENDS)
    assert waived.get(GATE).status_code == 412


def test_gate_is_412_a_second_after_the_attestation_expired(
    world: World, clock: time_machine.Coordinates, bearer: Callable
) -> None:
    # The model card is re-attested every 30 days; the last attestation expires at T0 + 1 h. Latency is
    # fine, so that attestation is all that stands between the project and no-go.
    Project.objects.filter(pk=world.project.pk).update(stage="prototype")
    Criterion.objects.filter(pk=world.model_card.pk).update(valid_for_days=30)
    expires = T0 + dt.timedelta(hours=1)
    AttestationFactory(
        criterion=world.model_card,
        attested_by=world.cast.data_science,
        attested_at=expires - dt.timedelta(days=30),
    )
    MetricPointFactory(project=world.project, metric="latency_ms", value=120, ts=T0)
    client = bearer(world.project, ["scorecard:read"])
    assert client.get(GATE).status_code == 200
    clock.move_to(expires - dt.timedelta(seconds=1))
    assert client.get(GATE).status_code == 200
    clock.move_to(expires + dt.timedelta(seconds=1))
    response = client.get(GATE)
    assert response.status_code == 412
    [blocker] = response.json()["blockers"]
    assert (blocker["criterion"], blocker["status"]) == ("model_card", "missing")
    assert "expired" in blocker["reason"]


def test_gate_within_60_s_of_the_latest_evaluation_answers_from_it_without_evaluating(
    waived: Client, world: World, clock: time_machine.Coordinates, django_assert_max_num_queries: Callable
) -> None:
    # A blocker added behind the services' back (no re-evaluation): only a fresh evaluation sees it.
    MetricCriterionFactory(project=world.project, key="error_rate", metric="errors", op="<=", threshold=0.01)
    before = evaluations()
    clock.move_to(T0 + dt.timedelta(seconds=59))
    with django_assert_max_num_queries(6):
        response = waived.get(GATE)
    assert response.status_code == 200 and response.json()["computed_at"] == T0.isoformat()
    assert Scorecard.objects.count() == 1 and evaluations() == before
    clock.move_to(T0 + dt.timedelta(seconds=60))
    assert waived.get(GATE).status_code == 412
    assert Scorecard.objects.count() == 2 and evaluations() == before + 1


def test_a_pipeline_polling_the_gate_evaluates_at_most_once_a_minute(
    waived: Client, clock: time_machine.Coordinates
) -> None:
    # Nothing changes, so no new scorecard is ever stored: the minute counts from the last evaluation,
    # not from the (hours old) scorecard, or every poll would evaluate.
    before = evaluations()
    for second in range(5, 185, 5):
        clock.move_to(T0 + dt.timedelta(seconds=second))
        assert waived.get(GATE).status_code == 200
    assert evaluations() == before + 3  # at 60 s, 120 s and 180 s
    assert Scorecard.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_gate_calls_on_stale_evidence_evaluate_once_and_store_one_scorecard(
    waived: Client, world: World, clock: time_machine.Coordinates
) -> None:
    clock.move_to(WAIVER_ENDS + dt.timedelta(seconds=1))
    before = evaluations()
    start = threading.Barrier(4)
    decisions: list[str] = []
    errors: list[BaseException] = []

    def gate() -> None:
        try:
            project = Project.objects.get(pk=world.project.pk)
            start.wait(timeout=30)
            decisions.append(scorecard_for_gate(project=project).decision)
        except BaseException as exc:  # surfaced below: a thread's failure must fail the test
            errors.append(exc)
        finally:
            connection.close()  # each thread has its own database connection

    threads = [threading.Thread(target=gate) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors and decisions == ["no_go"] * 4
    # The project row lock of every evaluation serialises them; the gates that waited on it find the
    # evaluation they needed already done.
    assert evaluations() == before + 1
    assert list(Scorecard.objects.values_list("decision", flat=True)) == ["no_go", "go"]
    assert Event.objects.filter(kind="decision_changed").count() == 1
