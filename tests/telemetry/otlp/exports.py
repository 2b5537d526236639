"""Exports built field by field with the generated OTLP classes, for the rules no SDK exercises."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    AGGREGATION_TEMPORALITY_DELTA,
    ExponentialHistogram,
    ExponentialHistogramDataPoint,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Summary,
    SummaryDataPoint,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
NOW_NANOS = int(NOW.timestamp()) * 10**9


def attributes(values: Mapping[str, str | int]) -> list[KeyValue]:
    return [
        KeyValue(key=key, value=AnyValue(string_value=v) if isinstance(v, str) else AnyValue(int_value=v))
        for key, v in values.items()
    ]


def export(*metrics: Metric, service: str | None = "fraud-api") -> ExportMetricsServiceRequest:
    resource = Resource(attributes=attributes({"service.name": service} if service else {}))
    scope = ScopeMetrics(scope=InstrumentationScope(name="fraud.scoring"), metrics=list(metrics))
    return ExportMetricsServiceRequest(
        resource_metrics=[ResourceMetrics(resource=resource, scope_metrics=[scope])]
    )


def number(
    value: float | int | None, *, at: int = NOW_NANOS, labels: Mapping[str, str | int] | None = None
) -> NumberDataPoint:
    point = NumberDataPoint(time_unix_nano=at, attributes=attributes(labels or {}))
    if isinstance(value, int):
        point.as_int = value
    elif value is not None:
        point.as_double = value
    return point


def gauge(name: str, *points: NumberDataPoint) -> Metric:
    return Metric(name=name, gauge=Gauge(data_points=list(points)))


def histogram(
    name: str, *points: HistogramDataPoint, temporality: int = AGGREGATION_TEMPORALITY_DELTA
) -> Metric:
    return Metric(
        name=name, histogram=Histogram(data_points=list(points), aggregation_temporality=temporality)
    )


def exponential(
    name: str, *points: ExponentialHistogramDataPoint, temporality: int = AGGREGATION_TEMPORALITY_DELTA
) -> Metric:
    return Metric(
        name=name,
        exponential_histogram=ExponentialHistogram(
            data_points=list(points), aggregation_temporality=temporality
        ),
    )


def summary(name: str, *points: SummaryDataPoint) -> Metric:
    return Metric(name=name, summary=Summary(data_points=list(points)))


def explicit_point(
    bounds: tuple[float, ...],
    counts: tuple[int, ...],
    *,
    start: int = NOW_NANOS - 60 * 10**9,
    at: int = NOW_NANOS,
    total: float | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    labels: Mapping[str, str | int] | None = None,
) -> HistogramDataPoint:
    return HistogramDataPoint(
        start_time_unix_nano=start,
        time_unix_nano=at,
        count=sum(counts),
        explicit_bounds=list(bounds),
        bucket_counts=list(counts),
        sum=total,
        min=minimum,
        max=maximum,
        attributes=attributes(labels or {}),
    )
