"""The quantile sketch against numpy: every percentile within 1% of numpy's linear interpolation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from readiness.telemetry.rollups.sketch import (
    LOG_GAMMA,
    MIN_MAGNITUDE,
    RELATIVE_ACCURACY,
    Sketch,
    key_range,
    packed_merge,
    packed_merges,
    packed_sketches_of,
    sketch_of,
    sketches_merge,
    value_keys,
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


def _nudged(value: float, steps: int) -> float:
    """``value`` moved by ``steps`` floats up (or down): the neighbours of a bucket edge."""
    for _ in range(abs(steps)):
        value = float(np.nextafter(value, math.inf if steps > 0 else -math.inf))
    return value


# Bucket edges (gamma ** i, where the log rounds either way), their neighbours, the zero bucket's edge.
edges = st.builds(
    lambda index, steps, sign: sign * _nudged(math.exp(index * LOG_GAMMA), steps),
    st.integers(-1040, 35_480),
    st.integers(-2, 2),
    st.sampled_from([1.0, -1.0]),
)
near_zero = st.builds(_nudged, st.sampled_from([MIN_MAGNITUDE, -MIN_MAGNITUDE, 0.0]), st.integers(-2, 2))
any_values = st.one_of(signed, edges, near_zero, st.floats(allow_nan=False, allow_infinity=False))


@PROPERTY
@given(values=st.lists(any_values, min_size=1, max_size=200))
def test_every_value_lies_in_its_buckets_range(values: list[float]) -> None:
    data = np.array(values)
    for value, key in zip(data.tolist(), value_keys(data).tolist(), strict=True):
        low, high = key_range(key)
        assert low <= value <= high, (value, key)


@PROPERTY
@given(values=st.lists(any_values, min_size=1, max_size=200), data=st.data())
def test_a_rank_is_found_in_its_bucket_after_the_values_below_it(
    values: list[float], data: st.DataObject
) -> None:
    """The bucket a rank falls in, and the values below it, as a sort of the values says."""
    ordered = np.sort(np.array(values))
    ranks = data.draw(st.lists(st.integers(0, len(values) - 1), min_size=1, max_size=4))
    found = sketch_of(ordered).rank_buckets(ranks)
    keys = value_keys(ordered)
    for rank in ranks:
        bucket = found[rank]
        assert bucket.key == keys[rank]
        assert bucket.below == int(np.sum(keys < bucket.key))
        assert bucket.size == int(np.sum(keys == bucket.key))


def test_a_rank_outside_the_sketch_is_refused() -> None:
    with pytest.raises(ValueError, match="rank 3 outside a sketch of 3 values"):
        sketch_of(np.array([1.0, 2.0, 3.0])).rank_buckets([3])
