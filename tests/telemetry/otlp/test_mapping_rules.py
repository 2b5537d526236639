"""The mapping rules of PRODUCT.md §8 one by one, on exports built field by field."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    AGGREGATION_TEMPORALITY_CUMULATIVE,
    AGGREGATION_TEMPORALITY_UNSPECIFIED,
    DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK,
    ExponentialHistogramDataPoint,
    NumberDataPoint,
    SummaryDataPoint,
)

from readiness.telemetry.otlp import (
    InMemorySeriesMemory,
    MappedExport,
    ReservedName,
    TooManyPoints,
    map_export,
)
from readiness.telemetry.push_rules import MAX_POINTS
from tests.telemetry.otlp.exports import (
    NOW,
    NOW_NANOS,
    explicit_point,
    exponential,
    export,
    gauge,
    histogram,
    number,
    summary,
)

SECOND = 10**9
CUMULATIVE = AGGREGATION_TEMPORALITY_CUMULATIVE


def mapped_values(mapped: MappedExport) -> dict[str, float]:
    values = {point.metric: point.value for point in mapped.points}
    assert len(values) == len(mapped.points), "one point per metric expected"
    return values


def map_alone(*metrics: object, memory: InMemorySeriesMemory | None = None) -> MappedExport:
    return map_export(request=export(*metrics), memory=memory or InMemorySeriesMemory(), now=NOW)


def test_gauge_values_as_int_or_as_double_become_points_at_their_time() -> None:
    mapped = map_alone(gauge("queue", number(7, at=NOW_NANOS + 123_456_789)), gauge("ratio", number(0.5)))

    queue, ratio = mapped.points
    assert (queue.metric, queue.value, ratio.value) == ("queue", 7.0, 0.5)
    # Nanoseconds are kept to the microsecond, PostgreSQL's resolution.
    assert queue.ts == NOW + timedelta(microseconds=123_456)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, None])
def test_a_nan_infinite_or_missing_value_rejects_only_its_data_point(value: float | None) -> None:
    mapped = map_alone(gauge("ratio", number(value), number(0.5)))

    assert [point.value for point in mapped.points] == [0.5]
    assert mapped.rejected == 1
    assert mapped.reasons[0].startswith(
        "resource_metrics[0].scope_metrics[0].metrics[0].gauge.data_points[0]"
    )


def test_eleven_labels_with_service_reject_the_data_point() -> None:
    ten = {f"a{i}": "x" for i in range(10)}
    nine = {f"a{i}": "x" for i in range(9)}

    mapped = map_alone(gauge("ratio", number(0.1, labels=ten), number(0.2, labels=nine)))

    (point,) = mapped.points
    assert point.value == 0.2
    assert len(point.labels) == 10
    assert mapped.rejected == 1
    assert "more than 10 labels" in mapped.error_message


@pytest.mark.parametrize("name", ["health.up", "Health.Up", "HEALTH.latency_ms"])
def test_a_reserved_health_name_refuses_the_whole_export_naming_the_data_point(name: str) -> None:
    request = export(gauge("accuracy", number(0.9), number(0.8)), gauge(name, number(1)))

    with pytest.raises(ReservedName) as refused:
        map_export(request=request, memory=InMemorySeriesMemory(), now=NOW)

    assert refused.value.status == 400
    assert refused.value.index == 2  # the third data point of the export
    assert refused.value.path == "resource_metrics[0].scope_metrics[0].metrics[1].gauge.data_points[0]"
    assert refused.value.metric == name.lower()


def test_a_histogram_named_health_is_reserved_for_the_points_it_maps_to() -> None:
    with pytest.raises(ReservedName) as refused:
        map_alone(histogram("health", explicit_point((1.0,), (1, 0), total=0.5)))

    assert refused.value.metric == "health.count"


def test_a_reserved_name_is_refused_even_when_its_data_point_would_be_rejected() -> None:
    with pytest.raises(ReservedName):
        map_alone(gauge("health.up", number(math.nan)))


def test_names_merely_starting_with_health_are_not_reserved() -> None:
    mapped = map_alone(
        gauge("health", number(1)), gauge("healthy.ratio", number(1)), gauge("health_up", number(1))
    )

    assert [point.metric for point in mapped.points] == ["health", "healthy.ratio", "health_up"]


def test_a_refused_export_leaves_every_series_as_it_was() -> None:
    memory = InMemorySeriesMemory()
    latency = explicit_point((10.0,), (1, 2), total=40.0)
    request = export(histogram("latency_ms", latency, temporality=CUMULATIVE), gauge("health.up", number(1)))

    with pytest.raises(ReservedName):
        map_export(request=request, memory=memory, now=NOW)

    assert memory.states == {}


def test_exactly_10000_points_are_accepted_and_one_more_refuses_the_export() -> None:
    points = [number(float(i), labels={"i": i}) for i in range(MAX_POINTS)]

    assert len(map_alone(gauge("ratio", *points)).points) == MAX_POINTS
    with pytest.raises(TooManyPoints) as refused:
        map_alone(gauge("ratio", *points, number(1.0)))
    assert refused.value.status == 413


def test_too_many_points_leave_every_series_as_it_was() -> None:
    memory = InMemorySeriesMemory()
    latency = histogram("latency_ms", explicit_point((10.0,), (1, 2), total=40.0), temporality=CUMULATIVE)

    with pytest.raises(TooManyPoints):
        map_alone(
            latency, gauge("ratio", *[number(1.0, labels={"i": i}) for i in range(MAX_POINTS)]), memory=memory
        )

    assert memory.states == {}


@pytest.mark.parametrize(
    ("at", "reason"),
    [
        (0, "time_unix_nano is missing"),
        (NOW_NANOS + 5 * 60 * SECOND + 1000, "more than 5 minutes in the future"),
        (NOW_NANOS - 401 * 86_400 * SECOND, "older than 400 days"),
    ],
)
def test_a_time_outside_the_push_s_bounds_rejects_the_data_point(at: int, reason: str) -> None:
    mapped = map_alone(gauge("ratio", number(0.5, at=at)))

    assert mapped.points == []
    assert reason in mapped.error_message


def test_times_at_the_edges_of_the_push_s_bounds_are_accepted() -> None:
    edges = (NOW_NANOS + 5 * 60 * SECOND, NOW_NANOS - 400 * 86_400 * SECOND)

    mapped = map_alone(gauge("ratio", *[number(0.5, at=at) for at in edges]))

    assert [point.ts for point in mapped.points] == [NOW + timedelta(minutes=5), NOW - timedelta(days=400)]


def test_a_data_point_without_a_recorded_value_is_skipped_not_rejected() -> None:
    stale = NumberDataPoint(time_unix_nano=NOW_NANOS, flags=DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK)

    mapped = map_alone(gauge("ratio", stale, number(0.5)))

    assert ([point.value for point in mapped.points], mapped.rejected) == ([0.5], 0)


def test_a_delta_histogram_maps_to_count_sum_and_percentiles_inside_its_buckets() -> None:
    # Four observations in (10, 20], min 12 and max 18: placed at 13.2, 14.4, 15.6, 16.8.
    point = explicit_point((10.0, 20.0), (0, 4, 0), total=60.0, minimum=12.0, maximum=18.0)

    values = mapped_values(map_alone(histogram("Latency MS", point)))

    assert values == {
        "latency_ms.count": 4.0,
        "latency_ms.sum": 60.0,
        "latency_ms.p50": pytest.approx(15.0),
        "latency_ms.p90": pytest.approx(16.44),
        "latency_ms.p95": pytest.approx(16.62),
        "latency_ms.p99": pytest.approx(16.764),
    }


def test_a_histogram_without_a_sum_maps_no_sum_point() -> None:
    values = mapped_values(map_alone(histogram("latency_ms", explicit_point((10.0,), (1, 0)))))

    assert set(values) == {
        "latency_ms.count",
        "latency_ms.p50",
        "latency_ms.p90",
        "latency_ms.p95",
        "latency_ms.p99",
    }


@pytest.mark.parametrize(
    ("bounds", "counts", "count", "reason"),
    [
        ((10.0, 20.0), (1, 2), 3, "2 bucket counts for 2 bounds"),
        ((20.0, 10.0), (1, 2, 0), 3, "strictly increasing"),
        ((10.0, math.inf), (1, 2, 0), 3, "finite"),
        ((10.0,), (1, 2), 4, "add up to 3, not to the count 4"),
    ],
)
def test_an_inconsistent_histogram_rejects_its_data_point(
    bounds: tuple[float, ...], counts: tuple[int, ...], count: int, reason: str
) -> None:
    point = explicit_point(bounds, counts, total=1.0)
    point.count = count

    mapped = map_alone(histogram("latency_ms", point))

    assert (mapped.points, mapped.rejected) == ([], 1)
    assert reason in mapped.error_message


def test_a_histogram_with_a_nan_sum_rejects_its_data_point() -> None:
    mapped = map_alone(histogram("latency_ms", explicit_point((10.0,), (1, 0), total=math.nan)))

    assert (mapped.points, mapped.rejected) == ([], 1)


def test_a_histogram_of_unspecified_temporality_rejects_its_data_points() -> None:
    latency = histogram(
        "latency_ms",
        explicit_point((10.0,), (1, 0), total=1.0),
        temporality=AGGREGATION_TEMPORALITY_UNSPECIFIED,
    )

    mapped = map_alone(latency)

    assert (mapped.points, mapped.rejected) == ([], 1)
    assert "neither delta (1) nor cumulative (2)" in mapped.error_message


def cumulative(*points: object) -> object:
    return histogram("latency_ms", *points, temporality=CUMULATIVE)


def test_a_cumulative_histogram_maps_the_difference_from_the_previous_point() -> None:
    memory = InMemorySeriesMemory()
    start = NOW_NANOS - 120 * SECOND
    first = explicit_point((10.0, 20.0), (1, 2, 0), start=start, at=NOW_NANOS - 60 * SECOND, total=35.0)
    second = explicit_point((10.0, 20.0), (1, 5, 1), start=start, at=NOW_NANOS, total=110.0, maximum=25.0)

    assert mapped_values(map_alone(cumulative(first), memory=memory))["latency_ms.count"] == 3
    values = mapped_values(map_alone(cumulative(second), memory=memory))

    assert values["latency_ms.count"] == 4
    assert values["latency_ms.sum"] == 75.0
    # Three new observations in (10, 20] and one in (20, 25]: p50 lies in the first of those.
    assert 10 <= values["latency_ms.p50"] <= 20
    assert 20 <= values["latency_ms.p99"] <= 25


def test_two_points_of_one_series_in_one_export_are_differenced_in_order() -> None:
    start = NOW_NANOS - 120 * SECOND
    first = explicit_point((10.0,), (2, 0), start=start, at=NOW_NANOS - 60 * SECOND, total=10.0)
    second = explicit_point((10.0,), (5, 0), start=start, at=NOW_NANOS, total=25.0)

    mapped = map_alone(cumulative(first, second))

    assert [p.value for p in mapped.points if p.metric == "latency_ms.count"] == [2, 3]
    assert [p.value for p in mapped.points if p.metric == "latency_ms.sum"] == [10.0, 15.0]


def test_a_cumulative_point_that_is_not_newer_is_rejected_and_changes_nothing() -> None:
    memory = InMemorySeriesMemory()
    point = explicit_point((10.0,), (2, 0), total=10.0)
    map_alone(cumulative(point), memory=memory)
    remembered = dict(memory.states)

    repeat = map_alone(cumulative(point), memory=memory)

    assert (repeat.points, repeat.rejected) == ([], 1)
    assert "not newer than the previous data point" in repeat.error_message
    assert memory.states == remembered


def test_a_count_going_down_is_a_reset_and_starts_over() -> None:
    memory = InMemorySeriesMemory()
    start = NOW_NANOS - 120 * SECOND
    map_alone(
        cumulative(explicit_point((10.0,), (8, 2), start=start, at=NOW_NANOS - 60 * SECOND)), memory=memory
    )

    values = mapped_values(map_alone(cumulative(explicit_point((10.0,), (3, 0), start=start)), memory=memory))

    assert values["latency_ms.count"] == 3


def test_a_first_cumulative_point_without_a_start_time_is_only_remembered() -> None:
    memory = InMemorySeriesMemory()
    first = explicit_point((10.0,), (4, 1), start=0, at=NOW_NANOS - 60 * SECOND, total=50.0)
    second = explicit_point((10.0,), (6, 1), start=0, at=NOW_NANOS, total=60.0)

    assert map_alone(cumulative(first), memory=memory).points == []
    values = mapped_values(map_alone(cumulative(second), memory=memory))

    assert (values["latency_ms.count"], values["latency_ms.sum"]) == (2, 10.0)


def test_a_changed_bucket_layout_starts_the_series_over() -> None:
    memory = InMemorySeriesMemory()
    start = NOW_NANOS - 120 * SECOND
    map_alone(
        cumulative(explicit_point((10.0,), (4, 1), start=start, at=NOW_NANOS - 60 * SECOND)), memory=memory
    )

    values = mapped_values(
        map_alone(cumulative(explicit_point((5.0, 10.0), (1, 4, 2), start=start)), memory=memory)
    )

    assert values["latency_ms.count"] == 7


def test_an_exponential_histogram_maps_negative_zero_and_positive_buckets() -> None:
    # Scale 0 (base 2): two observations in [-2, -1), one zero, four in (8, 16].
    point = ExponentialHistogramDataPoint(
        start_time_unix_nano=NOW_NANOS - 60 * SECOND,
        time_unix_nano=NOW_NANOS,
        count=7,
        scale=0,
        zero_count=1,
        positive=ExponentialHistogramDataPoint.Buckets(offset=3, bucket_counts=[4]),
        negative=ExponentialHistogramDataPoint.Buckets(offset=0, bucket_counts=[2]),
    )

    values = mapped_values(map_alone(exponential("temperature_delta", point)))

    assert values["temperature_delta.count"] == 7
    assert "temperature_delta.sum" not in values
    # Ascending: -5/3, -4/3, 0, 9.6, 11.2, 12.8, 14.4 (each bucket's observations evenly spread).
    assert values["temperature_delta.p50"] == pytest.approx(9.6)
    assert values["temperature_delta.p90"] == pytest.approx(12.8 + 0.4 * 1.6)
    assert values["temperature_delta.p99"] == pytest.approx(12.8 + 0.94 * 1.6)


def test_a_cumulative_exponential_histogram_is_differenced_across_a_lower_scale() -> None:
    memory = InMemorySeriesMemory()
    start = NOW_NANOS - 120 * SECOND

    def point(scale: int, offset: int, counts: list[int], at: int) -> ExponentialHistogramDataPoint:
        return ExponentialHistogramDataPoint(
            start_time_unix_nano=start,
            time_unix_nano=at,
            count=sum(counts),
            sum=10.0 * sum(counts),
            scale=scale,
            positive=ExponentialHistogramDataPoint.Buckets(offset=offset, bucket_counts=counts),
        )

    # Scale 1 buckets 6 and 7 ((8, 11.3] and (11.3, 16]) are scale 0's bucket 3, (8, 16].
    first = exponential("latency_ms", point(1, 6, [2, 1], NOW_NANOS - 60 * SECOND), temporality=CUMULATIVE)
    second = exponential("latency_ms", point(0, 3, [5, 1], NOW_NANOS), temporality=CUMULATIVE)
    map_alone(first, memory=memory)

    values = mapped_values(map_alone(second, memory=memory))

    assert (values["latency_ms.count"], values["latency_ms.sum"]) == (3, 30.0)
    # Two new observations in (8, 16] and one in (16, 32].
    assert 8 <= values["latency_ms.p50"] <= 16
    assert 16 <= values["latency_ms.p99"] <= 32


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"scale": 21}, "scale 21 is outside -10 to 20"),
        ({"count": 9}, "add up to 7, not to the count 9"),
        ({"zero_threshold": -1.0}, "zero_threshold"),
        (
            {"positive": ExponentialHistogramDataPoint.Buckets(offset=2**30, bucket_counts=[7])},
            "beyond the range",
        ),
    ],
)
def test_an_inconsistent_exponential_histogram_rejects_its_data_point(
    change: dict[str, object], reason: str
) -> None:
    fields: dict[str, object] = {
        "time_unix_nano": NOW_NANOS,
        "count": 7,
        "scale": 0,
        "positive": ExponentialHistogramDataPoint.Buckets(offset=3, bucket_counts=[7]),
    }
    mapped = map_alone(exponential("latency_ms", ExponentialHistogramDataPoint(**{**fields, **change})))

    assert (mapped.points, mapped.rejected) == ([], 1)
    assert reason in mapped.error_message


def test_a_summary_maps_count_sum_and_its_four_quantiles() -> None:
    quantiles = [(0.0, 1.0), (0.5, 120.0), (0.9, 300.0), (0.95, 410.0), (0.99, 800.0), (1.0, 950.0)]
    point = SummaryDataPoint(
        time_unix_nano=NOW_NANOS,
        count=1000,
        sum=150_000.0,
        quantile_values=[SummaryDataPoint.ValueAtQuantile(quantile=q, value=v) for q, v in quantiles],
    )

    values = mapped_values(map_alone(summary("rpc.duration", point)))

    assert values == {
        "rpc.duration.count": 1000.0,
        "rpc.duration.sum": 150_000.0,
        "rpc.duration.p50": 120.0,
        "rpc.duration.p90": 300.0,
        "rpc.duration.p95": 410.0,
        "rpc.duration.p99": 800.0,
    }


def test_a_summary_s_nan_quantile_is_left_out_and_a_nan_sum_rejects_it() -> None:
    empty_window = SummaryDataPoint(
        time_unix_nano=NOW_NANOS,
        count=10,
        sum=5.0,
        quantile_values=[SummaryDataPoint.ValueAtQuantile(quantile=0.5, value=math.nan)],
    )
    broken = SummaryDataPoint(time_unix_nano=NOW_NANOS, count=10, sum=math.nan)

    mapped = map_alone(summary("rpc.duration", empty_window, broken))

    assert {p.metric: p.value for p in mapped.points} == {"rpc.duration.count": 10.0, "rpc.duration.sum": 5.0}
    assert mapped.rejected == 1


def test_the_error_message_counts_every_rejection_and_names_the_first_five() -> None:
    mapped = map_alone(gauge("ratio", *[number(math.nan) for _ in range(7)]))

    assert mapped.rejected == 7
    assert len(mapped.reasons) == 5
    assert mapped.error_message.startswith("7 data points rejected: resource_metrics[0]")
    assert mapped.error_message.endswith("; ...")


def test_points_carry_the_resource_service_and_a_resource_without_one_gives_none() -> None:
    with_service = map_export(request=export(gauge("a", number(1))), memory=InMemorySeriesMemory(), now=NOW)
    without = map_export(
        request=export(gauge("a", number(1)), service=None), memory=InMemorySeriesMemory(), now=NOW
    )

    assert with_service.points[0].labels == {"service": "fraud-api"}
    assert without.points[0].labels == {}
