"""The real OpenTelemetry SDK exporting to the running product (PRODUCT.md §8 "OTLP receiver").

The SDK's OTLP/HTTP exporter in this process is configured only by the two environment variables
the README gives (``OTEL_EXPORTER_OTLP_METRICS_ENDPOINT``, ``OTEL_EXPORTER_OTLP_HEADERS``) and
exports to gunicorn as the Dockerfile runs it, with a real Celery worker applying the batches. The
points are read back through the metric API and checked against what the test observed: gauge
values, counter totals, and histogram percentiles against numpy on the same observations.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from django.test import Client
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from readiness.projects.services import token_create
from readiness.telemetry.models import IngestBatch, MetricPoint
from readiness.telemetry.otlp.quantiles import PERCENTILES
from tests.factories import MetricCriterionFactory, ProjectFactory
from tests.servers import (
    RedisServer,
    WebServer,
    Worker,
    database_url,
    private_broker,  # noqa: F401 -- the fixture ``broker``
    subprocess_env,
    wait_for,
)
from tests.telemetry.otlp.test_sdk_exports import DEFAULT_BOUNDS

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

ROUNDS = 3  # export intervals: the first maps a cumulative histogram whole, the next ones differences
OBSERVATIONS = 300  # latencies per interval


@pytest.fixture
def web(broker: RedisServer, tmp_path: Any) -> Iterator[WebServer]:
    worker = Worker(broker.url, log=tmp_path / "worker.log")
    worker.start()
    worker.wait_ready()
    server = WebServer(
        subprocess_env(broker_url=broker.url, db_url=database_url(), READINESS_API_RATE_LIMIT="1000000/s"),
        log=tmp_path / "gunicorn.log",
    )
    server.start()
    yield server
    server.stop()
    worker.stop()


def bucket_width(value: float) -> float:
    """The width of the SDK default bucket (b[i-1], b[i]] holding ``value``."""
    index = min(max(int(np.searchsorted(DEFAULT_BOUNDS, value, side="left")), 1), len(DEFAULT_BOUNDS) - 1)
    return float(DEFAULT_BOUNDS[index] - DEFAULT_BOUNDS[index - 1])


def series(client: Client, slug: str, metric: str) -> list[float]:
    response = client.get(f"/api/v1/projects/{slug}/metrics/{metric}", {"window": "1h"})
    assert response.status_code == 200, response.content
    return [point["value"] for point in response.json()["series"]]


def test_the_sdk_configured_by_two_environment_variables_lands_its_metrics(
    web: WebServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = ProjectFactory()
    # A criterion that accepts only OTLP points: its result must say they came from this exporter.
    MetricCriterionFactory(
        project=project,
        key="accuracy",
        metric="model.accuracy",
        aggregation="latest",
        op=">=",
        threshold=0.9,
        sources=["otlp"],
    )
    _, secret = token_create(project=project, name="fraud-sdk", scopes=["metrics:write"])
    _, reader_secret = token_create(project=project, name="reader", scopes=["scorecard:read"])
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", f"{web.url}/api/v1/otlp/v1/metrics")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", f"Authorization=Bearer {secret}")
    # Exports happen when the test flushes, one per round: the interval itself never elapses.
    reader = PeriodicExportingMetricReader(OTLPMetricExporter(), export_interval_millis=3_600_000)
    provider = MeterProvider(metric_readers=[reader], resource=Resource.create({"service.name": "fraud-api"}))
    meter = provider.get_meter("fraud.scoring", "1.4.0")
    accuracy = meter.create_gauge("model.accuracy")
    predictions = meter.create_counter("predictions")
    latency = meter.create_histogram("latency_ms", unit="ms")
    rng = np.random.default_rng(20261122)
    accuracies = [0.91, 0.93, 0.92]
    totals: list[int] = []
    rounds: list[np.ndarray] = []
    try:
        for round_ in range(ROUNDS):
            accuracy.set(accuracies[round_], {"model_version": "7"})
            predictions.add(100 + round_, {"model_version": "7"})
            totals.append(sum(100 + r for r in range(round_ + 1)))
            observed = rng.lognormal(mean=5.0, sigma=0.6, size=OBSERVATIONS).clip(1, 9_999)
            for value in observed:
                latency.record(float(value), {"model_version": "7"})
            rounds.append(observed)
            assert provider.force_flush(timeout_millis=60_000)
    finally:
        provider.shutdown()

    # Each round's export: gauge, counter, histogram count and sum, p50...p99. shutdown() exports once
    # more: the gauge and the counter as they stand, and an interval without observations (count and
    # sum 0, no percentiles).
    expected = ROUNDS * (1 + 1 + 2 + len(PERCENTILES)) + 4
    assert wait_for(lambda: MetricPoint.objects.filter(project=project).count() >= expected, timeout=60), (
        list(IngestBatch.objects.values_list("state", "accepted", "error"))
    )

    client = Client(headers={"Authorization": f"Bearer {reader_secret}"})
    assert series(client, project.slug, "model.accuracy") == [*accuracies, accuracies[-1]]
    assert series(client, project.slug, "predictions") == [float(total) for total in [*totals, totals[-1]]]
    assert series(client, project.slug, "latency_ms.count") == [float(OBSERVATIONS)] * ROUNDS + [0.0]
    sums = [float(observed.sum()) for observed in rounds]
    assert series(client, project.slug, "latency_ms.sum") == pytest.approx([*sums, 0.0])
    for name, q in PERCENTILES.items():
        estimates = series(client, project.slug, f"latency_ms.{name}")
        assert len(estimates) == ROUNDS
        for estimate, observed in zip(estimates, rounds, strict=True):
            exact = float(np.quantile(observed, q))
            tolerance = max(bucket_width(exact), bucket_width(estimate))
            assert abs(estimate - exact) <= tolerance, (name, estimate, exact)
    stored_labels = MetricPoint.objects.filter(project=project).values_list("labels", flat=True)
    assert all(labels == {"model_version": "7", "service": "fraud-api"} for labels in stored_labels)
    assert MetricPoint.objects.filter(project=project).count() == expected
    metric = client.get(f"/api/v1/projects/{project.slug}/metrics/model.accuracy", {"source": "otlp"}).json()
    assert metric["sources"] == {"otlp:fraud-sdk": ROUNDS + 1}
    scorecard = client.get(f"/api/v1/projects/{project.slug}/scorecard", {"target": "pilot"}).json()
    (result,) = [c for c in scorecard["criteria"] if c["key"] == "accuracy"]
    assert (result["status"], result["sources"]) == ("pass", ["otlp:fraud-sdk"])
