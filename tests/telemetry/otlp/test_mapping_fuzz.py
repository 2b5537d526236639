"""Hypothesis: any export maps to valid points and counted rejections, or is refused whole; nothing else."""

from __future__ import annotations

import math
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    ExponentialHistogram,
    ExponentialHistogramDataPoint,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    NumberDataPoint,
    Sum,
    Summary,
    SummaryDataPoint,
)

from readiness.telemetry.otlp import ExportRefused, InMemorySeriesMemory, map_export
from readiness.telemetry.push_rules import (
    FUTURE_LEEWAY,
    LABEL_KEY_RE,
    MAX_AGE,
    MAX_LABEL_VALUE,
    MAX_LABELS,
    METRIC_RE,
)
from tests.telemetry.otlp.exports import NOW, NOW_NANOS, attributes, export

SECOND = 10**9
NAMES = st.sampled_from(
    ["latency_ms", "Latency MS", "health.up", "health", "9lives", "", "x" * 99]
) | st.text(max_size=12)
DOUBLES = st.floats() | st.sampled_from([0.0, 1.5, 250.0, -3.0])
COUNTS = st.integers(0, 2**64 - 1) | st.integers(0, 20)
TIMES = st.sampled_from(
    [0, NOW_NANOS, NOW_NANOS - 60 * SECOND, NOW_NANOS + 3600 * SECOND, 2**64 - 1]
) | st.integers(NOW_NANOS - 3 * SECOND, NOW_NANOS)
LABELS = st.dictionaries(st.text(max_size=8), st.text(max_size=8) | st.integers(-5, 5), max_size=11).map(
    attributes
)
TEMPORALITIES = st.integers(0, 3)
OPTIONAL = st.none() | DOUBLES


def number_points() -> st.SearchStrategy[NumberDataPoint]:
    value = st.one_of(
        st.builds(lambda v: {"as_double": v}, DOUBLES),
        st.builds(lambda v: {"as_int": v}, st.integers(-(2**63), 2**63 - 1)),
        st.just({}),
    )
    return st.builds(
        lambda fields, at, labels, flags: NumberDataPoint(
            time_unix_nano=at, attributes=labels, flags=flags, **fields
        ),
        value,
        TIMES,
        LABELS,
        st.integers(0, 1),
    )


@st.composite
def histogram_points(draw: st.DrawFn) -> HistogramDataPoint:
    bounds = draw(st.lists(DOUBLES, max_size=6))
    counts = draw(st.lists(st.integers(0, 30), max_size=8))
    consistent = draw(st.booleans())
    return HistogramDataPoint(
        start_time_unix_nano=draw(st.sampled_from([0, NOW_NANOS - 600 * SECOND, NOW_NANOS - 300 * SECOND])),
        time_unix_nano=draw(TIMES),
        count=sum(counts) if consistent else draw(COUNTS),
        explicit_bounds=sorted(set(bounds)) if consistent else bounds,
        bucket_counts=counts,
        sum=draw(OPTIONAL),
        min=draw(OPTIONAL),
        max=draw(OPTIONAL),
        attributes=draw(LABELS),
    )


@st.composite
def exponential_points(draw: st.DrawFn) -> ExponentialHistogramDataPoint:
    positive = draw(st.lists(st.integers(0, 30), max_size=8))
    negative = draw(st.lists(st.integers(0, 30), max_size=8))
    zero_count = draw(st.integers(0, 5))
    return ExponentialHistogramDataPoint(
        start_time_unix_nano=draw(st.sampled_from([0, NOW_NANOS - 600 * SECOND])),
        time_unix_nano=draw(TIMES),
        count=zero_count + sum(positive) + sum(negative) if draw(st.booleans()) else draw(COUNTS),
        scale=draw(st.integers(-12, 22)),
        zero_count=zero_count,
        zero_threshold=draw(st.sampled_from([0.0, 1e-9, 5.0, -1.0, math.nan])),
        positive=ExponentialHistogramDataPoint.Buckets(
            offset=draw(st.integers(-(2**31), 2**31 - 1)), bucket_counts=positive
        ),
        negative=ExponentialHistogramDataPoint.Buckets(
            offset=draw(st.integers(-50, 50)), bucket_counts=negative
        ),
        sum=draw(OPTIONAL),
        min=draw(OPTIONAL),
        max=draw(OPTIONAL),
    )


summary_points = st.builds(
    lambda at, count, total, quantiles: SummaryDataPoint(
        time_unix_nano=at,
        count=count,
        sum=total,
        quantile_values=[SummaryDataPoint.ValueAtQuantile(quantile=q, value=v) for q, v in quantiles],
    ),
    TIMES,
    COUNTS,
    DOUBLES,
    st.lists(st.tuples(st.sampled_from([0.5, 0.9, 0.95, 0.99, 0.0, 1.0]), DOUBLES), max_size=6),
)

METRICS = st.one_of(
    st.builds(
        lambda n, p: Metric(name=n, gauge=Gauge(data_points=p)), NAMES, st.lists(number_points(), max_size=3)
    ),
    st.builds(
        lambda n, p, t: Metric(name=n, sum=Sum(data_points=p, aggregation_temporality=t)),
        NAMES,
        st.lists(number_points(), max_size=3),
        TEMPORALITIES,
    ),
    st.builds(
        lambda n, p, t: Metric(name=n, histogram=Histogram(data_points=p, aggregation_temporality=t)),
        NAMES,
        st.lists(histogram_points(), max_size=3),
        TEMPORALITIES,
    ),
    st.builds(
        lambda n, p, t: Metric(
            name=n, exponential_histogram=ExponentialHistogram(data_points=p, aggregation_temporality=t)
        ),
        NAMES,
        st.lists(exponential_points(), max_size=3),
        TEMPORALITIES,
    ),
    st.builds(
        lambda n, p: Metric(name=n, summary=Summary(data_points=p)),
        NAMES,
        st.lists(summary_points, max_size=3),
    ),
    st.builds(lambda n: Metric(name=n), NAMES),
)


def data_points(request: ExportMetricsServiceRequest) -> int:
    return sum(
        len(getattr(metric, metric.WhichOneof("data")).data_points)
        for resource in request.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.WhichOneof("data")
    )


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    metrics=st.lists(METRICS, max_size=5), service=st.none() | st.text(max_size=20), exports=st.integers(1, 2)
)
def test_any_export_maps_to_valid_points_or_is_refused_whole(
    metrics: list[Metric], service: str | None, exports: int
) -> None:
    request = export(*metrics, service=service)
    memory = InMemorySeriesMemory()
    # Twice with one memory: the second time every cumulative series has a previous point.
    for _ in range(exports):
        remembered = dict(memory.states)
        try:
            mapped = map_export(request=request, memory=memory, now=NOW)
        except ExportRefused as refused:
            assert refused.status in {400, 413}
            assert memory.states == remembered  # a refusal changes nothing
            return
        assert mapped.rejected <= data_points(request)
        assert len(mapped.reasons) == min(mapped.rejected, 5)
        for point in mapped.points:
            assert METRIC_RE.fullmatch(point.metric), point.metric
            assert not point.metric.startswith("health.")
            assert math.isfinite(point.value)
            assert NOW - MAX_AGE <= point.ts <= NOW + FUTURE_LEEWAY
            assert point.ts.utcoffset() == timedelta(0)
            assert len(point.labels) <= MAX_LABELS
            for key, value in point.labels.items():
                assert LABEL_KEY_RE.fullmatch(key)
                assert len(value) <= MAX_LABEL_VALUE and "\x00" not in value
