"""Percentiles from buckets: where the estimate may lie (Hypothesis), and the edges of open buckets."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from readiness.telemetry.otlp.histograms import ExplicitCounts, ExponentialCounts, _power
from readiness.telemetry.otlp.quantiles import (
    PERCENTILES,
    Bucket,
    estimate_quantile,
    percentiles,
    with_finite_edges,
)

QUANTILES = st.sampled_from(list(PERCENTILES.values())) | st.floats(0, 1)


def neighbours(observations: list[float], q: float) -> tuple[float, float]:
    """The order statistics the true quantile (numpy's linear interpolation) lies between."""
    ordered = sorted(observations)
    position = (len(ordered) - 1) * q
    return ordered[math.floor(position)], ordered[math.ceil(position)]


def explicit_bucket(bounds: list[float], value: float) -> tuple[float, float]:
    """The OTLP bucket holding ``value``: (-inf, b0], (b0, b1], ..., (b_last, +inf)."""
    index = int(np.searchsorted(bounds, value, side="left"))
    edges = [-math.inf, *bounds, math.inf]
    return edges[index], edges[index + 1]


@st.composite
def explicit_histograms(draw: st.DrawFn) -> tuple[list[float], list[float], bool]:
    bounds = sorted(draw(st.sets(st.floats(-1e6, 1e6, allow_subnormal=False), min_size=1, max_size=12)))
    non_negative = draw(st.booleans())
    low = 0.0 if non_negative else -2e6
    values = st.floats(low, 2e6, allow_subnormal=False) | st.sampled_from(bounds)
    observations = draw(st.lists(values.filter(lambda v: v >= low), min_size=1, max_size=200))
    return bounds, observations, non_negative


def explicit_estimate(
    bounds: list[float], observations: list[float], q: float, *, non_negative: bool, with_extremes: bool
) -> float:
    counts = [0] * (len(bounds) + 1)
    for value in observations:
        counts[int(np.searchsorted(bounds, value, side="left"))] += 1
    buckets = with_finite_edges(
        ExplicitCounts(tuple(bounds), tuple(counts)).buckets(),
        minimum=min(observations) if with_extremes else None,
        maximum=max(observations) if with_extremes else None,
        non_negative=non_negative,
    )
    assert buckets is not None  # bounds always give each occupied bucket a finite edge
    return estimate_quantile(buckets, q)


@settings(max_examples=500, deadline=None)
@given(histogram=explicit_histograms(), q=QUANTILES, with_extremes=st.booleans())
def test_an_explicit_estimate_lies_in_the_bucket_of_the_true_quantile(
    histogram: tuple[list[float], list[float], bool], q: float, with_extremes: bool
) -> None:
    bounds, observations, non_negative = histogram

    estimate = explicit_estimate(
        bounds, observations, q, non_negative=non_negative, with_extremes=with_extremes
    )

    # The true quantile lies between two order statistics; when they share a bucket, so does the
    # estimate, and otherwise it lies in the span of their two buckets.
    below, above = neighbours(observations, q)
    assert explicit_bucket(bounds, below)[0] <= estimate <= explicit_bucket(bounds, above)[1]
    if with_extremes:
        assert min(observations) <= estimate <= max(observations)


@st.composite
def exponential_histograms(draw: st.DrawFn) -> tuple[ExponentialCounts, list[tuple[float, float, float]]]:
    """Counts, and for each observation the edges of the bucket it was drawn in, and its value."""
    scale = draw(st.integers(-3, 8))
    zero_threshold = draw(st.sampled_from([0.0, 1e-9]))
    indices = st.integers(-40, 40)
    positive = draw(st.lists(indices, max_size=60))
    negative = draw(st.lists(indices, max_size=60))
    zero_count = draw(st.integers(0 if positive or negative else 1, 5))

    def dense(drawn: list[int]) -> tuple[int, tuple[int, ...]]:
        if not drawn:
            return 0, ()
        return min(drawn), tuple(drawn.count(i) for i in range(min(drawn), max(drawn) + 1))

    (p_offset, p_counts), (n_offset, n_counts) = dense(positive), dense(negative)
    counts = ExponentialCounts(scale, zero_threshold, zero_count, p_offset, p_counts, n_offset, n_counts)
    # Each observation lies in its bucket beyond the zero region, as an SDK would have counted it;
    # where the property speaks of "its bucket", that is the bucket's part outside the region.
    fraction = st.floats(0, 1)
    members = []
    for index in positive:
        lower, upper = (
            max(_power(index, scale), zero_threshold),
            max(_power(index + 1, scale), zero_threshold),
        )
        members.append((lower, upper, lower + (upper - lower) * draw(fraction)))
    for index in negative:
        lower, upper = (
            min(-_power(index + 1, scale), -zero_threshold),
            min(-_power(index, scale), -zero_threshold),
        )
        members.append((lower, upper, lower + (upper - lower) * draw(fraction)))
    members += [(-zero_threshold, zero_threshold, 0.0)] * zero_count
    return counts, members


@settings(max_examples=500, deadline=None)
@given(histogram=exponential_histograms(), q=QUANTILES)
def test_an_exponential_estimate_lies_in_the_bucket_of_the_true_quantile(
    histogram: tuple[ExponentialCounts, list[tuple[float, float, float]]], q: float
) -> None:
    counts, members = histogram
    buckets = with_finite_edges(counts.buckets(), minimum=None, maximum=None, non_negative=False)
    assert buckets is not None

    estimate = estimate_quantile(buckets, q)

    # Order the observations by value; neighbours by rank, then the bucket each was drawn in.
    ordered = sorted(members, key=lambda member: member[2])
    position = (len(ordered) - 1) * q
    below, above = ordered[math.floor(position)], ordered[math.ceil(position)]
    assert below[0] <= estimate <= above[1]


@settings(max_examples=300, deadline=None)
@given(histogram=explicit_histograms())
def test_percentiles_never_decrease_from_p50_to_p99(histogram: tuple[list[float], list[float], bool]) -> None:
    bounds, observations, non_negative = histogram
    counts = [0] * (len(bounds) + 1)
    for value in observations:
        counts[int(np.searchsorted(bounds, value, side="left"))] += 1
    buckets = with_finite_edges(
        ExplicitCounts(tuple(bounds), tuple(counts)).buckets(),
        minimum=None,
        maximum=None,
        non_negative=non_negative,
    )
    assert buckets is not None

    estimates = percentiles(buckets)

    assert estimates["p50"] <= estimates["p90"] <= estimates["p95"] <= estimates["p99"]


def test_observations_spread_evenly_in_one_bucket_give_numpy_s_quantiles() -> None:
    # 9 observations at 1..9 in the bucket (0, 10]: placed at 10 (r + 1) / 10 = 1, 2, ..., 9 exactly.
    buckets = [Bucket(0.0, 10.0, 9)]
    observations = np.arange(1.0, 10.0)

    for q in PERCENTILES.values():
        assert estimate_quantile(buckets, q) == pytest.approx(np.percentile(observations, q * 100))


def test_the_first_bucket_starts_at_min_when_the_point_has_one() -> None:
    buckets = ExplicitCounts((10.0, 20.0), (3, 0, 0)).buckets()

    (first,) = with_finite_edges(buckets, minimum=4.0, maximum=9.0, non_negative=True)

    assert (first.lower, first.upper) == (4.0, 9.0)


def test_the_first_bucket_starts_at_zero_for_non_negative_observations_without_min() -> None:
    (first,) = with_finite_edges(
        ExplicitCounts((10.0, 20.0), (3, 0, 0)).buckets(), minimum=None, maximum=None, non_negative=True
    )

    assert (first.lower, first.upper) == (0.0, 10.0)


def test_without_min_or_a_sum_the_first_bucket_collapses_to_its_bound() -> None:
    (first,) = with_finite_edges(
        ExplicitCounts((10.0, 20.0), (3, 0, 0)).buckets(), minimum=None, maximum=None, non_negative=False
    )

    assert (first.lower, first.upper) == (10.0, 10.0)


def test_the_overflow_bucket_ends_at_max_when_present_and_at_the_last_bound_otherwise() -> None:
    buckets = ExplicitCounts((10.0, 20.0), (0, 0, 2)).buckets()

    (with_max,) = with_finite_edges(buckets, minimum=None, maximum=35.0, non_negative=True)
    (without,) = with_finite_edges(buckets, minimum=None, maximum=None, non_negative=True)

    assert (with_max.lower, with_max.upper) == (20.0, 35.0)
    assert (without.lower, without.upper) == (20.0, 20.0)


def test_a_min_or_max_outside_their_bucket_does_not_move_it() -> None:
    # Inconsistent extremes (a buggy exporter) are clamped into the bucket, never widen it.
    (first,) = with_finite_edges(
        ExplicitCounts((10.0,), (3, 0)).buckets(), minimum=50.0, maximum=-50.0, non_negative=False
    )

    assert first.lower == first.upper == 10.0


def test_a_histogram_without_bounds_gives_percentiles_only_with_min_and_max() -> None:
    buckets = ExplicitCounts((), (5,)).buckets()

    assert with_finite_edges(buckets, minimum=None, maximum=None, non_negative=False) is None
    assert with_finite_edges(buckets, minimum=1.0, maximum=None, non_negative=False) is None
    (only,) = with_finite_edges(buckets, minimum=1.0, maximum=3.0, non_negative=False)
    assert (only.lower, only.upper) == (1.0, 3.0)


def test_edges_at_the_ends_of_the_double_range_do_not_overflow() -> None:
    buckets = [Bucket(-1.7e308, 1.7e308, 3)]

    estimate = estimate_quantile(buckets, 0.75)

    assert math.isfinite(estimate)
    assert -1.7e308 <= estimate <= 1.7e308


def test_exponential_buckets_follow_the_scale() -> None:
    # Scale 1: base sqrt(2). Positive index 2 is (2, 2*sqrt(2)]; negative index 0 is [-sqrt(2), -1).
    counts = ExponentialCounts(1, 0.0, 1, 2, (4,), 0, (2,))

    negative, zero, positive = counts.buckets()

    assert (negative.lower, negative.upper, negative.count) == (pytest.approx(-math.sqrt(2)), -1.0, 2)
    assert (zero.lower, zero.upper, zero.count) == (0.0, 0.0, 1)
    assert (positive.lower, positive.upper, positive.count) == (2.0, pytest.approx(2 * math.sqrt(2)), 4)


def test_exponential_buckets_reaching_into_the_zero_region_are_cut_at_its_edge() -> None:
    # Scale -2 (base 16): positive bucket -9 is (16**-9, 16**-8], about (1.5e-11, 2.3e-10], wholly
    # inside a zero region of 1e-9; bucket -7 (16**-7, 16**-6] reaches past it.
    counts = ExponentialCounts(-2, 1e-9, 1, -9, (1, 0, 1), -9, (1,))

    buckets = counts.buckets()

    assert [(b.lower, b.count) for b in buckets if b.count][:3] == [(-1e-9, 1), (-1e-9, 1), (1e-9, 1)]
    for below, above in itertools.pairwise(buckets):
        assert below.lower <= below.upper <= above.lower <= above.upper
