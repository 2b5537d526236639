"""``manage.py readiness_demo``: the demo portfolio of PRODUCT.md §7, loaded twice."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import transaction
from django.db.models import Max, Min
from django.test import Client
from pytest_django import DjangoDbBlocker

from readiness.projects.models import LEADERSHIP_GROUP, Project, StageChange, Team
from readiness.scoring.models import Attestation, Criterion, Scorecard, SignOff, Waiver
from readiness.telemetry.models import HealthCheck, MetricPoint

COUNTED = (
    get_user_model(),
    Team,
    Project,
    StageChange,
    Criterion,
    Attestation,
    SignOff,
    Waiver,
    MetricPoint,
    HealthCheck,
)


@dataclass(frozen=True)
class DemoLoad:
    first_output: str
    second_output: str
    counts_after_first: dict[str, int]
    counts_after_second: dict[str, int]


def _counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in COUNTED}


def _load(*args: str) -> str:
    out = StringIO()
    call_command("readiness_demo", *args, stdout=out)
    return out.getvalue()


@pytest.fixture(scope="module")
def demo(django_db_setup: None, django_db_blocker: DjangoDbBlocker) -> Iterator[DemoLoad]:
    """The demo loaded twice, once for the module: loading takes seconds and every test here only
    reads. Everything is rolled back at the end, so other modules never see it."""
    with django_db_blocker.unblock(), transaction.atomic():
        first = _load()
        after_first = _counts()
        second = _load("--password", "another-secret")
        yield DemoLoad(first, second, after_first, _counts())
        transaction.set_rollback(True)


def _latest(slug: str) -> Scorecard:
    return Scorecard.objects.filter(project__slug=slug).order_by("-computed_at", "-id").first()


def _latest_scorecards() -> list[Scorecard]:
    return [_latest(slug) for slug in Project.objects.values_list("slug", flat=True)]


@pytest.mark.django_db
def test_demo_loads_twelve_projects_across_every_stage(demo: DemoLoad) -> None:
    assert Project.objects.count() == 12
    assert set(Project.objects.values_list("stage", flat=True)) == {
        "prototype",
        "pilot",
        "production",
        "retired",
    }
    assert Project.objects.filter(stage="retired").count() == 1
    assert set(Project.objects.values_list("risk_tier", flat=True)) == {
        "minimal",
        "limited",
        "high",
        "prohibited",
    }


@pytest.mark.django_db
def test_demo_decisions_include_go_a_failing_metric_and_a_prohibited_tier(demo: DemoLoad) -> None:
    scorecards = _latest_scorecards()
    assert {s.decision for s in scorecards} == {"go", "no_go"}
    go = [s for s in scorecards if s.decision == "go"]
    assert go and all(not s.payload["blockers"] for s in go)

    def failing_metrics(scorecard: Scorecard) -> list[str]:
        kinds = {c["key"]: c["kind"] for c in scorecard.payload["criteria"]}
        return [
            b["criterion"]
            for b in scorecard.payload["blockers"]
            if b["status"] == "fail" and kinds.get(b["criterion"]) == "metric"
        ]

    assert any(failing_metrics(s) for s in scorecards if s.decision == "no_go")
    router = _latest("support-ticket-router")
    assert (router.decision, failing_metrics(router)) == ("no_go", ["latency_p99"])
    prohibited = _latest("agent-emotion-monitor")
    assert prohibited.decision == "no_go"
    assert {"dimension": None, "criterion": None, "status": "prohibited"}.items() <= (
        prohibited.payload["blockers"][0].items()
    )


@pytest.mark.django_db
def test_demo_blockers_tell_different_stories(demo: DemoLoad) -> None:
    def blockers(slug: str) -> set[tuple[str | None, str]]:
        return {(b["criterion"], b["status"]) for b in _latest(slug).payload["blockers"]}

    assert blockers("churn-predictor") == {(None, "signoff_stale")}
    assert ("drift", "fail") in blockers("aml-transaction-monitor")
    assert ("human_oversight", "missing") in blockers("credit-risk-scorer")
    assert ("availability", "fail") in blockers("ticket-summariser")
    ocr = {c["key"]: c["status"] for c in _latest("document-ocr").payload["criteria"]}
    assert (_latest("document-ocr").decision, ocr["cost_per_prediction"]) == ("go", "waived")
    aml = {c["key"]: c["status"] for c in _latest("aml-transaction-monitor").payload["criteria"]}
    assert aml["latency_p99"] == "not_applicable"


@pytest.mark.django_db
def test_demo_ml_test_score_counts_automated_and_manual_attestations(demo: DemoLoad) -> None:
    reranker = Attestation.objects.filter(criterion__project__slug="search-reranker")
    assert reranker.filter(automated=True, token__name="ci-pipeline").exists()
    assert reranker.filter(automated=False, attested_by__username="priya").exists()
    assert _latest("search-reranker").payload["ml_test_score"]["score"] == 4.0


@pytest.mark.django_db
def test_demo_has_weeks_of_metric_and_scorecard_history(demo: DemoLoad) -> None:
    span = MetricPoint.objects.filter(project__slug="fraud-detector").aggregate(
        first=Min("ts"), last=Max("ts")
    )
    assert span["last"] - span["first"] > timedelta(days=27)
    assert MetricPoint.objects.count() <= 150_000
    # One evaluation a day for two weeks, plus one per action.
    assert Scorecard.objects.filter(project__slug="fraud-detector").count() >= 14
    # The router was go once signed off, until its latency regressed.
    history = Scorecard.objects.filter(project__slug="support-ticket-router").order_by("computed_at", "id")
    changes = [(s.previous_decision, s.decision) for s in history if s.is_decision_change]
    assert changes == [("no_go", "go"), ("go", "no_go")]
    stuck = StageChange.objects.get(project__slug="credit-risk-scorer", to_stage="pilot")
    assert stuck.changed_at < span["last"] - timedelta(days=150)


@pytest.mark.django_db
def test_demo_loaded_twice_changes_nothing(demo: DemoLoad) -> None:
    assert demo.counts_after_second == demo.counts_after_first
    assert "already there" in demo.second_output
    assert MetricPoint.objects.count() == demo.counts_after_first["MetricPoint"]


@pytest.mark.django_db
def test_demo_prints_the_login_and_a_line_per_project(demo: DemoLoad) -> None:
    assert (
        "as lea / readiness-demo (leadership: the portfolio) or admin / readiness-demo" in demo.first_output
    )
    assert "/ as lea / another-secret" in demo.second_output
    assert "fraud-detector             production go     0 blockers" in demo.first_output
    assert "support-ticket-router      production no_go  2 blockers" in demo.first_output


@pytest.mark.django_db
def test_demo_users_log_in_with_the_demo_password(demo: DemoLoad) -> None:
    users = get_user_model().objects
    admin, leader = users.get(username="admin"), users.get(username="lea")
    assert admin.is_staff and admin.is_superuser
    assert leader.groups.filter(name=LEADERSHIP_GROUP).exists() and not leader.is_staff
    # The second load set the password it was given.
    for username in ("admin", "lea", "alice"):
        assert Client().login(username=username, password="another-secret"), username
    assert not Client().login(username="admin", password="readiness-demo")


@pytest.mark.django_db
def test_demo_services_in_service_are_probed_live_at_readiness_own_healthz(demo: DemoLoad) -> None:
    checks = HealthCheck.objects.all().select_related("project")
    assert checks, "the demo defines live health targets"
    assert {c.url for c in checks} == {"http://127.0.0.1:8000/healthz"}
    assert {c.name for c in checks} == {"api"}  # the target label of the demo's health.up history
    assert not any(c.project.stage == "retired" for c in checks)
    assert "Health checks:" in demo.first_output
