"""The printable go/no-go report: decision, dimensions with sign-offs by name and date, blockers with
owners and remediation, ML Test Score, and server-rendered SVG charts; print-ready and escaped."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from django.contrib.staticfiles import finders
from django.db import connection
from django.test import Client

from readiness.projects.models import Project, Team
from readiness.scoring.models import Scorecard
from readiness.scoring.services import attestation_create, scorecard_refresh, signoff_create
from readiness.telemetry.models import MetricPoint
from readiness.telemetry.series import MAX_SERIES_POINTS
from tests.conftest import Cast
from tests.dashboard.test_pages import ESCAPED, XSS, count_queries
from tests.factories import AttestationCriterionFactory, MetricCriterionFactory

URL = "/projects/fraud-detector/report/"
NOW = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)


def points(project: Project, metric: str, values: list[float], *, every: timedelta, **labels: str) -> None:
    """Points ending at NOW, oldest first, one per ``every``."""
    MetricPoint.objects.bulk_create(
        MetricPoint(
            project=project, metric=metric, value=value, ts=NOW - (len(values) - 1 - n) * every, labels=labels
        )
        for n, value in enumerate(values)
    )


@pytest.fixture
def reviewed(cast: Cast) -> Iterator[Cast]:
    """A pilot project aiming at production: latency fails, a model card is missing, product is signed
    off by its owner; the decision was go for a while last month."""
    project = cast.project
    cast.product.first_name, cast.product.last_name = "Carol", "Nguyen"
    cast.product.save()
    cast.engineering.first_name, cast.engineering.last_name = "Bob", "Okafor"
    cast.engineering.save()
    MetricCriterionFactory(
        project=project,
        key="p99_latency",
        title="p99 latency within target",
        threshold=300,
        warn_threshold=250,
        remediation="Profile the slowest endpoint.",
    )
    AttestationCriterionFactory(
        project=project, key="model_card", title="A model card documents the model", dimension="data_science"
    )
    points(project, "latency_ms", [200.0, 420.0, 380.0], every=timedelta(hours=1))
    Scorecard.objects.create(
        project=project,
        target="production",
        decision="go",
        computed_at=NOW - timedelta(days=40),
        digest="then",
        payload={"decision": "go", "dimensions": {}, "criteria": [], "blockers": []},
    )
    with time_machine.travel(NOW, tick=False):
        scorecard_refresh(project=project)
        signoff_create(project=project, dimension="product", by=cast.product)
        yield cast


def report(client: Client) -> str:
    with time_machine.travel(NOW + timedelta(minutes=5), tick=False):
        response = client.get(URL)
    assert response.status_code == 200
    return response.content.decode()


def test_report_states_the_decision_target_and_time(reviewed: Cast, as_user: Callable) -> None:
    content = report(as_user(reviewed.leader))
    assert 'No-go <span class="decision__target">for production</span>' in content
    assert (
        'Scorecard computed <time datetime="2026-11-18T12:00:00+00:00">18 Nov 2026, 12:00 UTC</time>'
        in content
    )


def test_report_lists_the_four_dimensions_with_status_score_and_sign_off(
    reviewed: Cast, as_user: Callable
) -> None:
    page = as_user(reviewed.leader)
    with time_machine.travel(NOW, tick=False):
        dimensions = page.get(URL).context["report"].dimensions
    assert [
        (column.key, column.status, column.score, column.signoff_state, signer)
        for column, signer in dimensions
    ] == [
        ("data_science", "fail", 0.0, "missing", None),
        ("engineering", "fail", 0.0, "missing", None),
        ("product", "pass", 100.0, "valid", "Carol Nguyen (carol)"),
        ("security", "pass", 100.0, "missing", None),
    ]
    content = report(page)
    assert "Signed off</span> by Carol Nguyen (carol), 18 Nov 2026" in content


def test_report_lists_blockers_with_owners_and_remediation(reviewed: Cast, as_user: Callable) -> None:
    content = report(as_user(reviewed.leader))
    assert "p99 latency within target <code>p99_latency</code>" in content
    assert "Bob Okafor (bob)" in content
    assert "Profile the slowest endpoint." in content
    assert "A model card documents the model <code>model_card</code>" in content
    assert "5 blockers stand in the way." in content  # two criteria, three missing sign-offs


def test_report_draws_the_failing_metric_against_its_thresholds(reviewed: Cast, as_user: Callable) -> None:
    content = report(as_user(reviewed.leader))
    assert "<h2>Metric criteria that fail or warn</h2>" in content
    assert "target ≤ 300 (warns above 250)" in content
    assert ">threshold &lt;= 300</text>" in content and ">warn 250</text>" in content
    (polyline,) = re.findall(r'<polyline points="([^"]+)"', content)
    assert len(polyline.split()) == 3  # few points are drawn as they are


def test_report_draws_the_decision_timeline(reviewed: Cast, as_user: Callable) -> None:
    content = report(as_user(reviewed.leader))
    assert "Decision over the last 90 days" in content
    assert (
        'Go</span> from 9 Oct 2026 · <span class="mark mark--no_go">No-go</span> from 18 Nov 2026' in content
    )
    assert content.count('fill="#9fd3ae"') == 1 and content.count('fill="#f0a39b"') == 1


def test_report_charts_a_minute_series_downsampled(cast: Cast, as_user: Callable) -> None:
    MetricCriterionFactory(project=cast.project, key="p99_latency", threshold=300)
    points(cast.project, "latency_ms", [400.0 + n % 7 for n in range(1440)], every=timedelta(minutes=1))
    with time_machine.travel(NOW, tick=False):
        scorecard_refresh(project=cast.project)
    (polyline,) = re.findall(r'<polyline points="([^"]+)"', report(as_user(cast.leader)))
    assert 100 < len(polyline.split()) <= MAX_SERIES_POINTS


def test_report_charts_only_the_points_of_the_criterions_labels(cast: Cast, as_user: Callable) -> None:
    MetricCriterionFactory(
        project=cast.project, key="p99_latency", threshold=300, labels={"model_version": "7"}
    )
    points(cast.project, "latency_ms", [500.0, 510.0], every=timedelta(minutes=5), model_version="7")
    points(cast.project, "latency_ms", [100.0, 110.0, 120.0], every=timedelta(minutes=7), model_version="6")
    with time_machine.travel(NOW, tick=False):
        scorecard_refresh(project=cast.project)
    content = report(as_user(cast.leader))
    assert "· 2 points" in content
    (polyline,) = re.findall(r'<polyline points="([^"]+)"', content)
    assert len(polyline.split()) == 2


def test_report_caps_the_charts_and_says_how_many_were_left_out(cast: Cast, as_user: Callable) -> None:
    for n in range(6):
        MetricCriterionFactory(project=cast.project, key=f"latency_{n}", threshold=300)
    points(cast.project, "latency_ms", [900.0], every=timedelta(minutes=1))
    with time_machine.travel(NOW, tick=False):
        scorecard_refresh(project=cast.project)
    content = report(as_user(cast.leader))
    assert content.count("<polyline") == 4
    assert "2 more metric criteria fail or warn: see the scorecard." in content


def test_report_shows_the_ml_test_score_when_the_template_is_used(cast: Cast, as_user: Callable) -> None:
    test = AttestationCriterionFactory(
        project=cast.project, key="mlts_monitoring_1", dimension="engineering", severity="advisory"
    )
    attestation_create(criterion=test, by=cast.engineering)
    content = report(as_user(cast.leader))
    assert "ML Test Score: 0" in content
    assert "more of a research project than a productionized system" in content


def test_report_without_ml_test_score_leaves_it_out(reviewed: Cast, as_user: Callable) -> None:
    assert "ML Test Score" not in report(as_user(reviewed.leader))


# --- Print -----------------------------------------------------------------------------------------


def test_report_is_a_page_without_navigation_buttons_or_script(reviewed: Cast, as_user: Callable) -> None:
    content = report(as_user(reviewed.leader))
    assert "<script" not in content and "<button" not in content and "<form" not in content
    assert 'class="site-header"' not in content
    assert "dashboard/report.css" in content
    # The only navigation is the screen toolbar, which the print stylesheet hides.
    assert content.count("<nav") == 1 and 'class="report-tools"' in content


def test_print_stylesheet_lays_out_one_a4_page_without_the_toolbar() -> None:
    path = finders.find("dashboard/report.css")
    assert path is not None
    css = Path(path).read_text(encoding="utf-8")
    assert "@page { size: A4;" in css
    print_rules = css[css.index("@media print") :]
    assert ".report-tools { display: none; }" in print_rules


# --- Access, escaping, queries --------------------------------------------------------------------


def test_anonymous_is_redirected_to_login(cast: Cast, client: Client) -> None:
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"] == f"/login/?next={URL}"


@pytest.mark.parametrize("who", ["admin", "leader", "member", "engineering"])
def test_every_reader_opens_the_report(cast: Cast, as_user: Callable, who: str) -> None:
    assert as_user(getattr(cast, who)).get(URL).status_code == 200


def test_outsider_gets_404(cast: Cast, as_user: Callable) -> None:
    assert as_user(cast.outsider).get(URL).status_code == 404


def test_unknown_project_is_404(cast: Cast, as_user: Callable) -> None:
    assert as_user(cast.admin).get("/projects/nope/report/").status_code == 404


@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_report_refuses_other_methods(cast: Cast, as_user: Callable, method: str) -> None:
    assert getattr(as_user(cast.leader), method)(URL).status_code == 405


def test_user_provided_text_is_escaped(cast: Cast, as_user: Callable) -> None:
    Project.objects.filter(pk=cast.project.pk).update(name=XSS, description=XSS)
    Team.objects.filter(pk=cast.project.team_id).update(name=XSS)
    cast.engineering.first_name = XSS
    cast.engineering.save()
    MetricCriterionFactory(project=cast.project, key="p99_latency", title=XSS, remediation=XSS, threshold=300)
    points(cast.project, "latency_ms", [900.0, 950.0], every=timedelta(minutes=1))
    with time_machine.travel(NOW, tick=False):
        scorecard_refresh(project=cast.project)
    content = report(as_user(cast.leader))
    assert "<script>" not in content
    # The name (title, heading), the team, the owner, the criterion's title and remediation, its chart.
    assert content.count(ESCAPED) >= 6


def test_report_queries_do_not_grow_with_criteria_or_history(
    cast: Cast, as_user: Callable, django_assert_max_num_queries: Callable
) -> None:
    client = as_user(cast.leader)
    MetricCriterionFactory(project=cast.project, key="p99_latency", threshold=300)
    points(cast.project, "latency_ms", [900.0], every=timedelta(minutes=1))
    with time_machine.travel(NOW, tick=False):
        scorecard_refresh(project=cast.project)
        few = count_queries(client, URL)
        for n in range(30):
            AttestationCriterionFactory(project=cast.project, key=f"check_{n}")
        for n in range(6):
            MetricCriterionFactory(project=cast.project, key=f"latency_{n}", threshold=300)
        for day in range(1, 60):
            Scorecard.objects.create(
                project=cast.project,
                target="production",
                decision="go" if day % 2 else "no_go",
                computed_at=NOW - timedelta(days=day),
                digest=str(day),
                payload={"decision": "go", "dimensions": {}, "criteria": [], "blockers": []},
            )
        scorecard_refresh(project=cast.project)
        # At most three more charts, a few queries each (4: the window plan of rollups is one of them;
        # 6 on SQLite, where a window's sources and percentile values are read by queries of their own).
        per_chart = 4 if connection.vendor == "postgresql" else 6
        with django_assert_max_num_queries(few + 3 * per_chart):
            assert client.get(URL).status_code == 200
        many = count_queries(client, URL)
        scorecard_refresh(project=cast.project)
        for n in range(6, 20):
            MetricCriterionFactory(project=cast.project, key=f"latency_{n}", threshold=300)
        scorecard_refresh(project=cast.project)
        assert count_queries(client, URL) == many
