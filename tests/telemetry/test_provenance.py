"""Forged availability (issue 12): a criterion that accepts only probes is judged on probes alone.

Through the real storage path (batch_ingest + the drain) and the real evaluation: pushed health.up is
refused at the door, points pushed before the rule (push:legacy) are left out as if absent, and probe
points pass. Every criterion result says which sources its value came from.
"""

from __future__ import annotations

import datetime as dt

import orjson
import pytest
import time_machine
from django.utils import timezone

from readiness.scoring.drift.jobs import drift_result_compute
from readiness.scoring.models import Template
from readiness.scoring.services import scorecard_compute
from readiness.scoring.templates import template_apply
from readiness.telemetry.models import MetricPoint
from readiness.telemetry.push import PushInvalid
from readiness.telemetry.services import batch_ingest, batches_apply
from tests.conftest import Cast
from tests.factories import AttestationCriterionFactory, MetricCriterionFactory
from tests.scoring.drift.conftest import NOW, drift_criterion, normal, store_current, store_reference

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def frozen() -> object:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def health_points(count: int, value: float = 1.0) -> bytes:
    now = timezone.now()
    points = [
        {"metric": "health.up", "value": value, "ts": (now - dt.timedelta(minutes=i + 1)).isoformat()}
        for i in range(count)
    ]
    return orjson.dumps({"points": points})


def store(cast: Cast, body: bytes, source: str) -> None:
    batch_ingest(project_id=cast.project.pk, body=body, source=source)
    batches_apply()


def result(cast: Cast, key: str, target: str = "production") -> dict:
    payload = scorecard_compute(project=cast.project, target=target).to_json()
    return next(c for c in payload["criteria"] if c["key"] == key)


def test_a_probe_only_criterion_is_missing_over_pushed_points_and_passes_over_probes(cast: Cast) -> None:
    MetricCriterionFactory(
        project=cast.project,
        key="uptime",
        metric="health.up",
        aggregation="mean",
        op=">=",
        threshold=0.99,
        sources=["probe"],
    )
    # Pushed today: refused whole. Pushed before the rule existed: stored as push:legacy.
    with pytest.raises(PushInvalid):
        batch_ingest(project_id=cast.project.pk, body=health_points(50), source="push:ci")
    MetricPoint.objects.bulk_create(
        MetricPoint(
            project=cast.project,
            metric="health.up",
            ts=NOW - dt.timedelta(minutes=i),
            value=1.0,
            source="push:legacy",
        )
        for i in range(50)
    )

    forged = result(cast, "uptime")
    assert (forged["status"], forged["value"], forged["sources"]) == ("missing", None, [])
    assert forged["reason"] == "no health.up data from probe over 24h (at least 1 sample needed)"

    store(cast, health_points(10), "probe:api")
    probed = result(cast, "uptime")
    assert (probed["status"], probed["value"], probed["sources"]) == ("pass", 1.0, ["probe:api"])


def test_without_sources_every_kind_counts_and_each_is_named(cast: Cast) -> None:
    MetricCriterionFactory(
        project=cast.project, key="uptime", metric="health.up", aggregation="mean", op=">=", threshold=0.5
    )
    MetricPoint.objects.create(
        project=cast.project, metric="health.up", ts=NOW, value=0.0, source="push:legacy"
    )
    store(cast, health_points(3), "probe:api")
    store(cast, health_points(1), "probe:db")
    uptime = result(cast, "uptime")
    assert uptime["value"] == 0.8
    assert uptime["sources"] == ["probe:api", "probe:db", "push:legacy"]


def test_latest_names_only_the_source_of_the_newest_point(cast: Cast) -> None:
    MetricCriterionFactory(
        project=cast.project, key="acc", metric="accuracy", aggregation="latest", op=">=", threshold=0.5
    )
    MetricPoint.objects.create(
        project=cast.project,
        metric="accuracy",
        ts=NOW - dt.timedelta(hours=1),
        value=0.7,
        source="mlflow:registry",
    )
    MetricPoint.objects.create(project=cast.project, metric="accuracy", ts=NOW, value=0.9, source="push:ci")
    assert (result(cast, "acc")["value"], result(cast, "acc")["sources"]) == (0.9, ["push:ci"])


def test_attestations_have_no_sources(cast: Cast) -> None:
    AttestationCriterionFactory(project=cast.project, key="threat_model")
    assert result(cast, "threat_model")["sources"] == []


def test_the_baselines_availability_cannot_pass_on_pushed_data(cast: Cast) -> None:
    template_apply(project=cast.project, template=Template.objects.get(key="baseline"))
    MetricPoint.objects.bulk_create(
        MetricPoint(
            project=cast.project,
            metric="health.up",
            ts=NOW - dt.timedelta(minutes=i),
            value=1.0,
            source=source,
        )
        for i in range(200)
        for source in ("push:legacy", "otlp:svc")
    )
    forged = result(cast, "availability")
    assert forged["status"] == "missing" and forged["sources"] == []
    assert "from probe or prometheus" in forged["reason"]

    store(cast, health_points(150), "probe:api")
    probed = result(cast, "availability")
    assert (probed["status"], probed["sources"]) == ("pass", ["probe:api"])


def test_a_drift_criterion_compares_only_the_kinds_it_accepts(cast: Cast) -> None:
    criterion = drift_criterion(cast.project, sources=["prometheus"])
    store_reference(cast.project, normal(1, 500), source="push:ci")
    store_current(cast.project, normal(2, 500), source="push:ci")
    missing = drift_result_compute(criterion=criterion, now=NOW)
    assert (missing.status, missing.reference_count, missing.current_count) == ("missing", 0, 0)
    assert "(from prometheus)" in missing.reason and missing.sources == []

    store_reference(cast.project, normal(3, 500), source="prometheus:prod")
    store_current(cast.project, normal(4, 500), source="prometheus:prod")
    computed = drift_result_compute(criterion=criterion, now=NOW)
    assert (computed.reference_count, computed.current_count) == (500, 500)
    assert computed.value is not None and computed.sources == ["prometheus:prod"]
    assert computed.measurement().sources == ("prometheus:prod",)
