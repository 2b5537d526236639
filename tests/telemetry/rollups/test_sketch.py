"""The quantile sketch against numpy: every percentile within 1% of numpy's linear interpolation."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from readiness.telemetry.rollups.sketch import (
    MIN_MAGNITUDE,
    RELATIVE_ACCURACY,
    Sketch,
    packed_merge,
    packed_merges,
    packed_sketches_of,
    sketch_of,
    sketches_merge,
)

PROPERTY = settings(max_examples=200, deadline=None)

magnitudes = st.floats(min_value=1e-6, max_value=1e12, allow_nan=False, allow_infinity=False)
signed = st.one_of(st.just(0.0), magnitudes, magnitudes.map(lambda x: -x))
value_lists = st.lists(signed, min_size=1, max_size=300)
quantiles = st.sampled_from([0.0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 1.0])


def _tolerance(values: np.ndarray, q: float) -> float:
    """What the sketch promises for numpy's interpolation between the two closest ranks: each rank's
    value within 1% of itself (or MIN_MAGNITUDE of zero), so the interpolation within the same weights
    of them. For same-signed neighbours that is 1% of the result."""
    ordered = np.sort(values)
    rank = q * (len(ordered) - 1)
    below = math.floor(rank)
    fraction = rank - below
    above = min(below + 1, len(ordered) - 1)
    bound = (1 - fraction) * abs(ordered[below]) + fraction * abs(ordered[above])
    return RELATIVE_ACCURACY * bound * (1 + 1e-9) + MIN_MAGNITUDE


@PROPERTY
@given(values=value_lists, q=quantiles)
def test_sketch_quantile_is_within_one_percent_of_numpy(values: list[float], q: float) -> None:
    data = np.array(values)
    expected = float(np.percentile(data, q * 100, method="linear"))
    estimate = sketch_of(data).quantile(q, low=float(data.min()), high=float(data.max()))
    assert estimate is not None
    assert abs(estimate - expected) <= _tolerance(data, q)


@PROPERTY
@given(values=st.lists(magnitudes, min_size=1, max_size=300), q=quantiles)
def test_sketch_of_positive_values_has_relative_error_at_most_one_percent(
    values: list[float], q: float
) -> None:
    data = np.array(values)
    expected = float(np.percentile(data, q * 100, method="linear"))
    estimate = sketch_of(data).quantile(q)
    assert estimate is not None
    assert abs(estimate - expected) <= RELATIVE_ACCURACY * expected * (1 + 1e-9)


@PROPERTY
@given(parts=st.lists(value_lists, min_size=1, max_size=6))
def test_merged_sketches_equal_the_sketch_of_all_values(parts: list[list[float]]) -> None:
    merged = sketches_merge(sketch_of(np.array(part)) for part in parts)
    whole = sketch_of(np.concatenate([np.array(part) for part in parts]))
    assert merged.keys.tolist() == whole.keys.tolist()
    assert merged.counts.tolist() == whole.counts.tolist()
    stored = packed_merge(sketch_of(np.array(part)).to_bytes() for part in parts)
    assert stored.counts.tolist() == whole.counts.tolist()


@PROPERTY
@given(groups=st.lists(value_lists, min_size=1, max_size=8))
def test_sketches_of_many_minutes_at_once_are_the_bytes_of_each_alone(groups: list[list[float]]) -> None:
    # The fold sketches a whole batch of minutes in one pass; each must be stored byte for byte as
    # if sketched alone, so a re-fold of one minute writes the identical row.
    values = np.concatenate([np.array(group) for group in groups])
    sizes = np.array([len(group) for group in groups])
    assert packed_sketches_of(values, sizes) == [sketch_of(np.array(group)).to_bytes() for group in groups]


@PROPERTY
@given(hours=st.lists(st.lists(value_lists, min_size=1, max_size=4), min_size=1, max_size=6))
def test_merges_of_many_hours_at_once_are_the_bytes_of_each_alone(hours: list[list[list[float]]]) -> None:
    stored = [[sketch_of(np.array(minute)).to_bytes() for minute in hour] for hour in hours]
    assert packed_merges(stored) == [packed_merge(blobs).to_bytes() for blobs in stored]


def test_stored_sketch_reads_back_identical_and_takes_eight_bytes_a_bucket() -> None:
    sketch = sketch_of(np.array([0.0, -3.5, -3.5, 1e-12, 2.0, 150.0, 1e300]))
    blob = sketch.to_bytes()
    assert len(blob) == 8 * len(sketch.keys)
    back = Sketch.from_bytes(blob)
    assert back.keys.tolist() == sketch.keys.tolist()
    # In value order: -3.5 twice, then 0 and 1e-12 sharing the zero bucket, then 2, 150 and 1e300.
    assert back.counts.tolist() == [2, 2, 1, 1, 1]


def test_empty_sketch_has_no_quantile() -> None:
    assert sketches_merge([]).quantile(0.5) is None
