"""An ExportMetricsServiceRequest to metric points (PRODUCT.md §8 "OTLP receiver").

Each data point becomes points, or is rejected with a reason (counted for ``partial_success``):

- Gauge and Sum: one point, ``as_int`` or ``as_double`` at ``time_unix_nano``; NaN and ±Inf are
  rejected. A cumulative Sum is stored as the total it reports, as a Prometheus counter would be.
- Histogram and exponential histogram: ``<name>.count`` and ``<name>.sum`` (when the data point has a
  sum) of the interval, and ``<name>.p50``, ``.p90``, ``.p95``, ``.p99`` estimated from its buckets
  (``quantiles``); cumulative series are differenced first (``histograms``). An interval without
  observations gives count and sum 0 and no percentile.
- Summary: ``.count`` and ``.sum`` as reported (a summary is cumulative by definition and the
  Collector's ``cumulativetodelta`` leaves it so), and its quantiles 0.5, 0.9, 0.95 and 0.99 as
  ``.p50``...``.p99``; other quantiles are left out, and so are non-finite ones (Prometheus clients
  report NaN for a window without observations).
- Timestamps have the push's bounds (not over 5 minutes ahead, not older than 400 days) and are kept
  to the microsecond, PostgreSQL's resolution.
- A data point flagged "no recorded value" (a staleness marker) carries no value: skipped, neither
  stored nor rejected.

Names and labels follow ``naming``. A metric under ``health.`` refuses the whole export
(``ReservedName``), and so do more than 10,000 resulting points (``TooManyPoints``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    AGGREGATION_TEMPORALITY_CUMULATIVE,
    AGGREGATION_TEMPORALITY_DELTA,
    DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK,
    ExponentialHistogramDataPoint,
    HistogramDataPoint,
    Metric,
    NumberDataPoint,
    SummaryDataPoint,
)

from readiness.telemetry.otlp.errors import ReservedName, TooManyPoints
from readiness.telemetry.otlp.histograms import (
    HistogramState,
    explicit_state,
    exponential_state,
    extremes,
    interval_since,
)
from readiness.telemetry.otlp.naming import (
    Rejection,
    is_reserved,
    labels_of,
    metric_name,
    normalise_metric_name,
    service_of,
)
from readiness.telemetry.otlp.quantiles import PERCENTILES, percentiles, with_finite_edges
from readiness.telemetry.otlp.series import SeriesMemory, series_key
from readiness.telemetry.push_rules import FUTURE_LEEWAY, MAX_AGE, MAX_POINTS

MAX_REASONS = 5  # the first reasons are enough to fix an exporter; they bound the answer's size
SCALAR_SUFFIXES = ("",)
DISTRIBUTION_SUFFIXES = (".count", ".sum", *(f".{name}" for name in PERCENTILES))
SUMMARY_QUANTILES = {q: name for name, q in PERCENTILES.items()}

Values = list[tuple[str, float]]  # (suffix, value) of the points one data point maps to


class OtlpPoint(NamedTuple):
    # A tuple, not a dataclass: an export makes up to 10,000 of them, and a frozen dataclass's
    # __init__ costs several times a tuple's.
    metric: str
    ts: datetime
    value: float
    labels: dict[str, str]


@dataclass(frozen=True)
class MappedExport:
    points: list[OtlpPoint]
    rejected: int  # data points, as OTLP's partial_success.rejected_data_points counts them
    reasons: list[str]  # the first MAX_REASONS, each naming its data point

    @property
    def error_message(self) -> str:
        if not self.rejected:
            return ""
        noun = "data point" if self.rejected == 1 else "data points"
        more = "; ..." if self.rejected > len(self.reasons) else ""
        return f"{self.rejected} {noun} rejected: {'; '.join(self.reasons)}{more}"


def map_export(*, request: ExportMetricsServiceRequest, memory: SeriesMemory, now: datetime) -> MappedExport:
    """Map a decoded export; raises ReservedName or TooManyPoints, which refuse it whole."""
    walk = _Walk(memory=memory, now=now)
    for r, resource_metrics in enumerate(request.resource_metrics):
        resource = resource_metrics.resource.attributes
        service = service_of(resource)
        for s, scope_metrics in enumerate(resource_metrics.scope_metrics):
            for m, metric in enumerate(scope_metrics.metrics):
                path = f"resource_metrics[{r}].scope_metrics[{s}].metrics[{m}]"
                walk.metric(metric, path=path, resource=resource, scope=scope_metrics.scope, service=service)
    # Only now that the export is accepted: a refused one must leave every series as it was.
    for key, state in walk.staged.items():
        memory.put(key, state)
    return MappedExport(points=walk.points, rejected=walk.rejected, reasons=walk.reasons)


@dataclass(frozen=True)
class _Series:
    """What names a series besides its data point's attributes (``series.series_key``)."""

    resource: Sequence[KeyValue]
    scope: InstrumentationScope
    metric: str
    kind: str

    def key(self, attributes: Sequence[KeyValue]) -> str:
        return series_key(
            resource_attributes=self.resource,
            scope=self.scope,
            metric=self.metric,
            kind=self.kind,
            attributes=attributes,
        )


@dataclass
class _Walk:
    memory: SeriesMemory
    now: datetime
    points: list[OtlpPoint] = field(default_factory=list)
    rejected: int = 0
    reasons: list[str] = field(default_factory=list)
    staged: dict[str, HistogramState] = field(default_factory=dict)
    index: int = 0  # of the data point, over the whole export
    clock: _Clock = field(init=False)

    def __post_init__(self) -> None:
        self.clock = _Clock(self.now)

    def metric(
        self,
        metric: Metric,
        *,
        path: str,
        resource: Sequence[KeyValue],
        scope: InstrumentationScope,
        service: str | Rejection | None,
    ) -> None:
        kind = metric.WhichOneof("data")
        if kind is None:
            return  # no data, no data points
        data = getattr(metric, kind)
        suffixes = SCALAR_SUFFIXES if kind in {"gauge", "sum"} else DISTRIBUTION_SUFFIXES
        normalised = normalise_metric_name(metric.name)
        name = metric_name(metric.name, suffixes=suffixes)
        temporality = getattr(data, "aggregation_temporality", None)
        series = _Series(resource=resource, scope=scope, metric=metric.name, kind=kind)
        # The same for every data point of the metric: judged once, refused at its first data point.
        reserved = next((normalised + s for s in suffixes if is_reserved(normalised + s)), None)
        for p, point in enumerate(data.data_points):
            index = self.index
            self.index += 1
            if reserved is not None:
                raise ReservedName(index=index, path=f"{path}.{kind}.data_points[{p}]", metric=reserved)
            if point.flags & DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK:
                continue
            outcome = self._data_point(
                point, name=name, temporality=temporality, service=service, series=series
            )
            if isinstance(outcome, Rejection):
                self.rejected += 1
                if len(self.reasons) < MAX_REASONS:
                    point_path = f"{path}.{kind}.data_points[{p}]"
                    self.reasons.append(f"{point_path} ({metric.name[:100]!r}): {outcome.reason}")

    def _data_point(
        self,
        point: NumberDataPoint | HistogramDataPoint | ExponentialHistogramDataPoint | SummaryDataPoint,
        *,
        name: str | Rejection,
        temporality: int | None,
        service: str | Rejection | None,
        series: _Series,
    ) -> Rejection | None:
        if isinstance(name, Rejection):
            return name
        ts = self.clock.timestamp(point.time_unix_nano)
        if isinstance(ts, Rejection):
            return ts
        labels = labels_of(point.attributes, service=service)
        if isinstance(labels, Rejection):
            return labels
        if isinstance(point, NumberDataPoint):
            values: Values | Rejection = _number(point)
        elif isinstance(point, SummaryDataPoint):
            values = _summary(point)
        else:
            values = self._distribution(point, temporality=temporality, series=series)
        if isinstance(values, Rejection):
            return values
        for suffix, value in values:
            self.points.append(OtlpPoint(metric=name + suffix, ts=ts, value=value, labels=labels))
        if len(self.points) > MAX_POINTS:
            raise TooManyPoints(f"the export maps to more than {MAX_POINTS:,} points; send smaller batches")
        return None

    def _distribution(
        self,
        point: HistogramDataPoint | ExponentialHistogramDataPoint,
        *,
        temporality: int | None,
        series: _Series,
    ) -> Values | Rejection:
        state = explicit_state(point) if isinstance(point, HistogramDataPoint) else exponential_state(point)
        if isinstance(state, Rejection):
            return state
        if temporality == AGGREGATION_TEMPORALITY_DELTA:
            interval: HistogramState | Rejection | None = state
        elif temporality == AGGREGATION_TEMPORALITY_CUMULATIVE:
            key = series.key(point.attributes)
            previous = self.staged[key] if key in self.staged else self.memory.get(key)
            interval = interval_since(previous, state)
            if isinstance(interval, Rejection):
                return interval
            self.staged[key] = state
        else:
            return Rejection(f"aggregation temporality {temporality} is neither delta (1) nor cumulative (2)")
        if interval is None:
            return []
        values: Values = [(".count", float(interval.count))]
        if interval.sum is not None:
            values.append((".sum", interval.sum))
        if interval.count:
            minimum, maximum = extremes(point)
            buckets = with_finite_edges(
                interval.counts.buckets(),
                minimum=minimum,
                maximum=maximum,
                non_negative=state.sum is not None,
            )
            if buckets is not None:
                values += [(f".{name}", value) for name, value in percentiles(buckets).items()]
        return values


def _number(point: NumberDataPoint) -> Values | Rejection:
    which = point.WhichOneof("value")
    if which == "as_int":
        return [("", float(point.as_int))]
    if which == "as_double":
        if not math.isfinite(point.as_double):
            return Rejection(f"the value {point.as_double} is not a finite number")
        return [("", point.as_double)]
    return Rejection("the data point has no value (as_int or as_double)")


def _summary(point: SummaryDataPoint) -> Values | Rejection:
    if not math.isfinite(point.sum):
        return Rejection(f"the sum {point.sum} is not a finite number")
    values: Values = [(".count", float(point.count)), (".sum", point.sum)]
    seen: set[float] = set()
    for quantile in point.quantile_values:
        if quantile.quantile in seen:
            return Rejection(f"quantile {quantile.quantile} appears twice")
        seen.add(quantile.quantile)
        name = SUMMARY_QUANTILES.get(quantile.quantile)
        if name is not None and math.isfinite(quantile.value):
            values.append((f".{name}", quantile.value))
    return values


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class _Clock:
    """Data point times to datetimes within the push's bounds, each distinct time converted once (an
    SDK stamps every data point of a collection with one time)."""

    def __init__(self, now: datetime) -> None:
        self.latest, self.earliest = now + FUTURE_LEEWAY, now - MAX_AGE
        self.seen: dict[int, datetime | Rejection] = {}

    def timestamp(self, nanos: int) -> datetime | Rejection:
        ts = self.seen.get(nanos)
        if ts is None:
            ts = self.seen[nanos] = self._convert(nanos)
        return ts

    def _convert(self, nanos: int) -> datetime | Rejection:
        if not nanos:
            return Rejection("time_unix_nano is missing")
        # Kept to the microsecond, PostgreSQL's resolution; integer arithmetic, exact.
        ts = _EPOCH + timedelta(microseconds=nanos // 1_000)
        if ts > self.latest:
            return Rejection(f"time {ts.isoformat()} is more than 5 minutes in the future")
        if ts < self.earliest:
            return Rejection(f"time {ts.isoformat()} is older than 400 days")
        return ts
