"""The dependency-free client (clients/readiness_push.py) over real HTTP against a live server:
its push stores points, its gate exits 0 on go, 1 on no-go and 2 on an error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from readiness.projects.services import token_create
from readiness.telemetry.models import IngestBatch, MetricPoint
from tests.factories import MetricCriterionFactory, MetricPointFactory, ProjectFactory

pytestmark = pytest.mark.django_db(transaction=True)
CLIENT = Path(__file__).resolve().parents[2] / "clients" / "readiness_push.py"


def run(url: str, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(CLIENT), "--url", url, "--token", token, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def project_and_token() -> tuple[object, str]:
    project = ProjectFactory(slug="ranker", stage="prototype")
    _, secret = token_create(project=project, name="ci", scopes=["metrics:write", "scorecard:read"])
    return project, secret


def test_push_sends_points_with_labels(live_server: object, project_and_token: tuple[object, str]) -> None:
    project, token = project_and_token
    result = run(
        live_server.url, token, "push", "latency_ms=182.5", "accuracy=0.93", "--label", "model_version=7"
    )
    assert result.returncode == 0, result.stderr
    assert "accepted 2 point(s)" in result.stdout
    assert IngestBatch.objects.get(project=project).accepted == 2
    # A push this small is stored by the request itself, before the 202.
    stored = MetricPoint.objects.filter(project=project).order_by("metric")
    assert [(p.metric, p.value, p.labels) for p in stored] == [
        ("accuracy", 0.93, {"model_version": "7"}),
        ("latency_ms", 182.5, {"model_version": "7"}),
    ]


def test_push_of_a_bad_point_exits_2_with_the_details(
    live_server: object, project_and_token: tuple[object, str]
) -> None:
    _, token = project_and_token
    result = run(live_server.url, token, "push", "Bad-Metric=1")
    assert result.returncode == 2
    assert "HTTP 400" in result.stderr and '"field": "metric"' in result.stderr
    assert not IngestBatch.objects.exists()


def test_gate_exits_1_on_no_go_and_0_on_go(
    live_server: object, project_and_token: tuple[object, str]
) -> None:
    project, token = project_and_token
    MetricCriterionFactory(project=project, key="p99_latency")
    no_go = run(live_server.url, token, "gate", "ranker")
    assert no_go.returncode == 1, no_go.stderr
    assert "no_go for pilot" in no_go.stdout and "p99_latency: missing" in no_go.stdout
    MetricPointFactory(project=project, metric="latency_ms", value=120.0)
    go = run(live_server.url, token, "gate", "ranker", "--target", "pilot")
    assert go.returncode == 0, go.stdout + go.stderr


def test_gate_of_a_project_the_token_cannot_read_exits_2(
    live_server: object, project_and_token: tuple[object, str]
) -> None:
    _, token = project_and_token
    ProjectFactory(slug="someone-else")
    result = run(live_server.url, token, "gate", "someone-else")
    assert result.returncode == 2 and "HTTP 404" in result.stderr


def test_a_revoked_or_wrong_token_exits_2(live_server: object, project_and_token: tuple[object, str]) -> None:
    assert run(live_server.url, "rdy_wrong", "gate", "ranker").returncode == 2
