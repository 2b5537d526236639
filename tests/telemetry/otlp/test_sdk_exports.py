"""Exports made by the real OpenTelemetry SDK, mapped as PRODUCT.md §8 says, in every body form."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pytest
from opentelemetry.proto.metrics.v1.metrics_pb2 import AGGREGATION_TEMPORALITY_CUMULATIVE
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource

from readiness.telemetry.otlp import InMemorySeriesMemory
from readiness.telemetry.otlp.quantiles import PERCENTILES
from tests.telemetry.otlp.sdk import BODY_FORMS, by_metric, instrumented, receive

# The SDK's default explicit bounds; every observation below stays inside them (0, 10,000].
DEFAULT_BOUNDS = np.array([0, 5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000], float)
PERCENTILE_NAMES = [f".{name}" for name in PERCENTILES]


def nanos_to_datetime(nanos: int) -> datetime:
    return datetime.fromtimestamp(nanos // 10**9, UTC).replace(microsecond=nanos % 10**9 // 1000)


def rank_neighbours(observations: np.ndarray, q: float) -> tuple[float, float]:
    """The two order statistics numpy's linear quantile interpolates between."""
    ordered = np.sort(observations)
    position = (len(ordered) - 1) * q
    return float(ordered[math.floor(position)]), float(ordered[math.ceil(position)])


def explicit_bucket_width(value: float) -> float:
    index = int(np.searchsorted(DEFAULT_BOUNDS, value, side="left"))  # bucket (b[i-1], b[i]]
    assert 0 < index < len(DEFAULT_BOUNDS), value
    return float(DEFAULT_BOUNDS[index] - DEFAULT_BOUNDS[index - 1])


def exponential_bucket_width(value: float, scale: int) -> float:
    index = math.ceil(math.log2(value) * 2**scale) - 1  # bucket (base**i, base**(i+1)]
    return 2 ** ((index + 1) / 2**scale) - 2 ** (index / 2**scale)


@pytest.mark.parametrize("form", BODY_FORMS)
def test_a_gauge_maps_to_one_point_with_its_value_labels_service_and_time(form: str) -> None:
    sdk = instrumented(service="fraud-api")
    sdk.meter.create_gauge("Model.Accuracy").set(0.931, {"model_version": "7", "shadow": False})
    request = sdk.export()

    mapped = receive(request, form=form, memory=InMemorySeriesMemory())

    (point,) = mapped.points
    sent = request.resource_metrics[0].scope_metrics[0].metrics[0].gauge.data_points[0]
    assert point.metric == "model.accuracy"
    assert point.value == 0.931
    # A string attribute as it is, a boolean as its JSON text; the resource's service.name as service.
    assert point.labels == {"service": "fraud-api", "model_version": "7", "shadow": "false"}
    assert point.ts == nanos_to_datetime(sent.time_unix_nano)
    assert point.ts.tzinfo is not None
    assert mapped.rejected == 0


@pytest.mark.parametrize("form", BODY_FORMS)
def test_a_counter_maps_to_its_running_total_at_each_collection(form: str) -> None:
    sdk = instrumented()
    requests = sdk.meter.create_counter("http.server.requests")
    memory = InMemorySeriesMemory()
    totals = []
    for added in (3, 4, 0, 10):
        requests.add(added, {"route": "/score", "code": 200})
        export = sdk.export()
        data = export.resource_metrics[0].scope_metrics[0].metrics[0].sum
        assert data.is_monotonic and data.aggregation_temporality == AGGREGATION_TEMPORALITY_CUMULATIVE
        (point,) = receive(export, form=form, memory=memory).points
        assert point.labels == {"service": "fraud-api", "route": "/score", "code": "200"}
        totals.append(point.value)
    assert totals == [3, 7, 7, 17]


@pytest.mark.parametrize("form", BODY_FORMS)
def test_an_up_down_counter_maps_to_its_current_value(form: str) -> None:
    sdk = instrumented()
    queue = sdk.meter.create_up_down_counter("scoring.queue_depth")
    values = []
    for change in (5, -3, -4, 2.5):
        queue.add(change)
        (point,) = receive(sdk.export(), form=form, memory=InMemorySeriesMemory()).points
        values.append(point.value)
    assert values == [5, 2, -2, 0.5]


@pytest.mark.parametrize("form", BODY_FORMS)
def test_histogram_percentiles_per_interval_match_numpy_within_one_bucket_width(form: str) -> None:
    sdk = instrumented()
    latency = sdk.meter.create_histogram("latency_ms", unit="ms")
    memory = InMemorySeriesMemory()
    rng = np.random.default_rng(20261122)
    # Three collection intervals with different distributions: each interval's points must describe
    # its own observations, not everything since the start (the SDK exports cumulative histograms).
    for size, median in ((400, 60.0), (900, 400.0), (150, 12.0)):
        observations = np.clip(rng.lognormal(math.log(median), 0.7, size), 0.01, 9999.0)
        for value in observations:
            latency.record(float(value), {"route": "/score"})
        mapped = receive(sdk.export(), form=form, memory=memory)

        values = by_metric(mapped)
        assert values["latency_ms.count"] == [size]
        assert values["latency_ms.sum"] == [pytest.approx(observations.sum(), rel=1e-9)]
        for name, q in PERCENTILES.items():
            (estimate,) = values[f"latency_ms.{name}"]
            width = max(explicit_bucket_width(v) for v in rank_neighbours(observations, q))
            assert abs(estimate - np.percentile(observations, q * 100)) <= width, (size, name)
        assert {point.labels["route"] for point in mapped.points} == {"/score"}


@pytest.mark.parametrize("form", BODY_FORMS)
def test_an_exponential_histogram_interval_matches_numpy_within_one_bucket_width(form: str) -> None:
    view = View(instrument_name="latency_ms", aggregation=ExponentialBucketHistogramAggregation(max_size=40))
    sdk = instrumented(views=[view])
    latency = sdk.meter.create_histogram("latency_ms")
    memory = InMemorySeriesMemory()
    rng = np.random.default_rng(7)
    scales = []
    # 40 buckets over a range that grows: the SDK lowers the scale between the two exports, so the
    # second interval is the difference of two points at different scales.
    for low, high in ((20.0, 40.0), (5.0, 4000.0)):
        observations = rng.uniform(low, high, 500)
        for value in observations:
            latency.record(float(value))
        export = sdk.export()
        scale = (
            export.resource_metrics[0].scope_metrics[0].metrics[0].exponential_histogram.data_points[0].scale
        )
        scales.append(scale)
        values = by_metric(receive(export, form=form, memory=memory))

        assert values["latency_ms.count"] == [500]
        assert values["latency_ms.sum"] == [pytest.approx(observations.sum(), rel=1e-9)]
        for name, q in PERCENTILES.items():
            (estimate,) = values[f"latency_ms.{name}"]
            width = max(exponential_bucket_width(v, scale) for v in rank_neighbours(observations, q))
            assert abs(estimate - np.percentile(observations, q * 100)) <= width, (low, high, name)
    assert scales[1] < scales[0]  # the SDK downscaled: the second interval crossed scales


@pytest.mark.parametrize("form", BODY_FORMS)
def test_an_interval_without_observations_gives_zero_count_and_sum_and_no_percentiles(form: str) -> None:
    sdk = instrumented()
    latency = sdk.meter.create_histogram("latency_ms")
    memory = InMemorySeriesMemory()
    for value in (12.0, 80.0, 300.0):
        latency.record(value)
    receive(sdk.export(), form=form, memory=memory)

    values = by_metric(receive(sdk.export(), form=form, memory=memory))

    assert values == {"latency_ms.count": [0.0], "latency_ms.sum": [0.0]}


@pytest.mark.parametrize("form", BODY_FORMS)
def test_a_restarted_meter_provider_starts_the_histogram_over(form: str) -> None:
    # One process identity (one Resource, so one series) across the restart.
    resource = Resource.create({"service.name": "fraud-api", "service.instance.id": "pod-a"})
    first = instrumented(resource=resource)
    memory = InMemorySeriesMemory()
    for value in range(1, 101):
        first.meter.create_histogram("latency_ms").record(float(value))
    before = first.export()
    receive(before, form=form, memory=memory)

    again = instrumented(resource=resource)
    for value in (40.0, 41.0, 42.0):
        again.meter.create_histogram("latency_ms").record(value)
    restarted = again.export()
    starts = [
        export.resource_metrics[0].scope_metrics[0].metrics[0].histogram.data_points[0].start_time_unix_nano
        for export in (before, restarted)
    ]
    assert starts[0] < starts[1]

    values = by_metric(receive(restarted, form=form, memory=memory))

    assert values["latency_ms.count"] == [3]
    assert values["latency_ms.sum"] == [123.0]
    assert all(25 <= values[f"latency_ms{name}"][0] <= 50 for name in PERCENTILE_NAMES)


def test_each_attribute_set_of_a_histogram_is_differenced_on_its_own() -> None:
    sdk = instrumented()
    latency = sdk.meter.create_histogram("latency_ms")
    memory = InMemorySeriesMemory()
    latency.record(10.0, {"route": "/a"})
    latency.record(20.0, {"route": "/b"})
    receive(sdk.export(), form="protobuf", memory=memory)
    latency.record(30.0, {"route": "/a"})

    mapped = receive(sdk.export(), form="protobuf", memory=memory)

    counts = {p.labels["route"]: p.value for p in mapped.points if p.metric == "latency_ms.count"}
    sums = {p.labels["route"]: p.value for p in mapped.points if p.metric == "latency_ms.sum"}
    assert counts == {"/a": 1, "/b": 0}
    assert sums == {"/a": 30.0, "/b": 0.0}


def test_two_replicas_of_one_service_are_two_series() -> None:
    # Two processes of one service differ only in their service.instance.id (the SDK gives every
    # provider of one process the same one, so it is set here as two processes would have it).
    replicas = [
        instrumented(resource=Resource.create({"service.name": "fraud-api", "service.instance.id": instance}))
        for instance in ("pod-a", "pod-b")
    ]
    memory = InMemorySeriesMemory()
    counts = []
    for round_ in range(3):
        for replica, observations in zip(replicas, (2, 5), strict=True):
            histogram = replica.meter.create_histogram("latency_ms")
            for _ in range(observations):
                histogram.record(10.0 + round_)
            (count,) = by_metric(receive(replica.export(), form="protobuf", memory=memory))[
                "latency_ms.count"
            ]
            counts.append(count)
    # Interleaved exports of the two replicas never look like resets of one another.
    assert counts == [2, 5, 2, 5, 2, 5]
