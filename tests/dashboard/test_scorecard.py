"""The scorecard page's content: decision banner, blockers with owners, columns, ML Test Score."""

from __future__ import annotations

from collections.abc import Callable

from readiness.projects.models import Project
from readiness.scoring.services import attestation_create
from tests.conftest import Cast
from tests.factories import (
    AttestationCriterionFactory,
    MetricCriterionFactory,
    MetricPointFactory,
)


def test_scorecard_shows_blockers_owners_and_remediation(cast: Cast, as_user: Callable) -> None:
    MetricCriterionFactory(
        project=cast.project,
        key="p99_latency",
        title="p99 latency within target",
        threshold=300,
        warn_threshold=250,
        remediation="Profile the slowest endpoint.",
    )
    MetricPointFactory(project=cast.project, metric="latency_ms", value=412.0)
    cast.engineering.first_name, cast.engineering.last_name = "Bob", "Okafor"
    cast.engineering.save()
    content = as_user(cast.leader).get("/projects/fraud-detector/").content.decode()
    assert "No-go" in content and "for production" in content
    assert "p99 latency within target" in content
    assert "<strong>412</strong>" in content
    assert "target ≤ 300 (warns above 250)" in content
    assert "Bob Okafor (bob)" in content
    assert "Profile the slowest endpoint." in content
    assert 'id="engineering"' in content


def test_scorecard_says_where_each_value_came_from(cast: Cast, as_user: Callable) -> None:
    """PRODUCT.md §8: the sources of a value next to it, in words, with the stored labels on hover."""
    MetricCriterionFactory(
        project=cast.project, key="uptime", metric="health.up", aggregation="mean", op=">=", threshold=0.5
    )
    MetricPointFactory(project=cast.project, metric="health.up", value=1.0, source="probe:api")
    MetricPointFactory(project=cast.project, metric="health.up", value=1.0, source="probe:db")
    MetricPointFactory(project=cast.project, metric="health.up", value=0.0, source="otlp:serving")
    content = as_user(cast.leader).get("/projects/fraud-detector/").content.decode()
    assert (
        '<p class="criterion__sources muted" title="otlp:serving, probe:api, probe:db">'
        "from OTLP exports: serving; probes: api, db</p>"
    ) in content


def test_scorecard_of_a_go_project_says_go(cast: Cast, as_user: Callable) -> None:
    # A prototype aims at pilot, where sign-offs are optional: no criteria, nothing blocks.
    Project.objects.filter(pk=cast.project.pk).update(stage="prototype")
    response = as_user(cast.leader).get("/projects/fraud-detector/")
    assert response.context["page"].decision == "go"
    assert "Every dimension passes and is signed off." in response.content.decode()


def test_scorecard_shows_the_ml_test_score_when_the_template_is_used(cast: Cast, as_user: Callable) -> None:
    test = AttestationCriterionFactory(
        project=cast.project, key="mlts_monitoring_1", dimension="engineering", severity="advisory"
    )
    attestation_create(criterion=test, by=cast.engineering)
    content = as_user(cast.leader).get("/projects/fraud-detector/").content.decode()
    assert "ML Test Score: 0" in content
    assert "more of a research project than a productionized system" in content
    assert "ML Test Score tests (1): 1 pass" in content


def test_scorecard_without_ml_test_score_shows_none(cast: Cast, as_user: Callable) -> None:
    assert b"ML Test Score" not in as_user(cast.leader).get("/projects/fraud-detector/").content


def test_scorecard_links_to_its_history_and_report(cast: Cast, as_user: Callable) -> None:
    content = as_user(cast.leader).get("/projects/fraud-detector/").content.decode()
    assert 'href="/projects/fraud-detector/history/"' in content
    assert 'href="/projects/fraud-detector/report/"' in content
