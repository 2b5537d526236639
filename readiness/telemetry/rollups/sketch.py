"""A mergeable quantile sketch with relative error <= 1% (DDSketch's logarithmic buckets).

Written here, in numpy, rather than taken from the ``ddsketch`` package: the bucket math is a dozen lines,
while what matters for speed is elsewhere. An evaluation merges up to ~850 stored sketches per criterion
(the hours of 30 days plus the minutes at the edges); ``ddsketch`` would decode each into Python objects
and merge bucket by bucket in Python (and its serialisation needs protobuf). Here a sketch is a sorted
array of (bucket key, count) pairs packed as little-endian int32 + uint32, so decoding is one
``np.frombuffer`` and merging many is one concatenate and one ``np.unique``.

Bucket keys (gamma = (1 + a) / (1 - a), a = 0.01): a value ``x`` with ``|x| >= MIN_MAGNITUDE`` has the
DDSketch index ``i = ceil(log_gamma(|x|))`` (bucket ``(gamma^(i-1), gamma^i]``, represented by
``2 gamma^i / (gamma + 1)``, within a of every value in it). Its key is ``i + KEY_OFFSET`` for a positive
value and ``-(i + KEY_OFFSET)`` for a negative one; smaller magnitudes (zero included) share key 0. The
offset keeps every positive key above 0 (``i >= -1037`` for 1e-9), so key order is value order and a
quantile is a walk along the cumulative counts. Floats reach ``i ~ 35,500``: keys fit int32. A count per
bucket fits uint32 (4.29e9 points of one series in one hour, far beyond what ingestion takes).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

RELATIVE_ACCURACY = 0.01
GAMMA = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
LOG_GAMMA = math.log(GAMMA)
# Below this magnitude a value counts as zero: an absolute error of at most 1e-9, far below what any
# metric of Readiness (latencies, rates, scores) distinguishes.
MIN_MAGNITUDE = 1e-9
KEY_OFFSET = 2_000
_PAIR = np.dtype([("key", "<i4"), ("count", "<u4")])


@dataclass(frozen=True)
class RankBucket:
    """The bucket holding one rank: its key, how many values lie in lower buckets, how many in it."""

    key: int
    below: int
    size: int


@dataclass(frozen=True)
class Sketch:
    """Bucket keys (sorted, unique) and their counts."""

    keys: np.ndarray  # int64
    counts: np.ndarray  # int64

    @property
    def count(self) -> int:
        return int(self.counts.sum())

    def to_bytes(self) -> bytes:
        pairs = np.empty(len(self.keys), dtype=_PAIR)
        pairs["key"] = self.keys
        pairs["count"] = self.counts
        return pairs.tobytes()

    @classmethod
    def from_bytes(cls, data: bytes | memoryview) -> Sketch:
        pairs = np.frombuffer(data, dtype=_PAIR)
        return cls(pairs["key"].astype(np.int64), pairs["count"].astype(np.int64))

    def rank_buckets(self, ranks: Iterable[int]) -> dict[int, RankBucket]:
        """For each 0-based rank (the ``rank``-th smallest value, ``0 <= rank < count``), the bucket
        holding it: the counts are exact, so that value is the ``rank - below``-th smallest of the
        bucket's own values."""
        cumulative = np.cumsum(self.counts)
        found: dict[int, RankBucket] = {}
        for rank in ranks:
            if not 0 <= rank < self.count:
                raise ValueError(f"rank {rank} outside a sketch of {self.count} values")
            # The bucket holding the k-th smallest value (0-based) is the first whose cumulative count > k.
            bucket = int(np.searchsorted(cumulative, rank, "right"))
            size = int(self.counts[bucket])
            found[rank] = RankBucket(int(self.keys[bucket]), int(cumulative[bucket]) - size, size)
        return found

    def quantile(self, q: float, *, low: float | None = None, high: float | None = None) -> float | None:
        """The ``q`` quantile with numpy's linear interpolation between closest ranks, each rank's value
        estimated by its bucket (so within 1% of it); ``low``/``high`` (the exact min and max, when
        known) clamp the estimates, which makes the extreme ranks exact."""
        n = self.count
        if n == 0:
            return None
        rank = q * (n - 1)
        below = math.floor(rank)
        fraction = rank - below
        cumulative = np.cumsum(self.counts)
        # The bucket holding the k-th smallest value (0-based) is the first whose cumulative count > k.
        lower_key, upper_key = self.keys[np.searchsorted(cumulative, [below, min(below + 1, n - 1)], "right")]
        lower = _clamp(key_value(int(lower_key)), low, high)
        upper = _clamp(key_value(int(upper_key)), low, high)
        return lower + fraction * (upper - lower)


def _clamp(value: float, low: float | None, high: float | None) -> float:
    if low is not None:
        value = max(value, low)
    if high is not None:
        value = min(value, high)
    return value


def value_keys(values: np.ndarray) -> np.ndarray:
    """The bucket key of each value (int64)."""
    magnitude = np.abs(values)
    keys = np.zeros(len(values), dtype=np.int64)
    kept = magnitude >= MIN_MAGNITUDE
    indexes = np.ceil(np.log(magnitude[kept]) / LOG_GAMMA).astype(np.int64) + KEY_OFFSET
    keys[kept] = np.where(values[kept] < 0, -indexes, indexes)
    return keys


# How much wider than its bucket a key's range is read (``key_range``): the log that places a value
# in a bucket rounds to within ~1e-12 of an edge, far inside this margin; the values read are then
# bucketed with ``value_keys`` itself, so the margin only ever adds values that are filtered out.
_RANGE_MARGIN = 1e-6


def key_range(key: int) -> tuple[float, float]:
    """A closed value interval holding every value of bucket ``key`` (a little wider than the bucket)."""
    if key == 0:
        return (-MIN_MAGNITUDE, MIN_MAGNITUDE)
    index = abs(key) - KEY_OFFSET
    low = _power(index - 1) * (1 - _RANGE_MARGIN)
    high = _power(index) * (1 + _RANGE_MARGIN)
    return (-high, -low) if key < 0 else (low, high)


def _power(index: int) -> float:
    """gamma ** index; the top bucket's upper edge is past the largest float."""
    try:
        return math.exp(index * LOG_GAMMA)
    except OverflowError:
        return math.inf


def key_value(key: int) -> float:
    """The value a bucket stands for: within RELATIVE_ACCURACY of every value in it."""
    if key == 0:
        return 0.0
    index = abs(key) - KEY_OFFSET
    magnitude = 2 * math.exp(index * LOG_GAMMA) / (GAMMA + 1)
    return -magnitude if key < 0 else magnitude


def sketch_of(values: np.ndarray) -> Sketch:
    keys, counts = np.unique(value_keys(np.asarray(values, dtype=float)), return_counts=True)
    return Sketch(keys, counts.astype(np.int64))


def sketches_merge(sketches: Iterable[Sketch]) -> Sketch:
    """One sketch of all the values of ``sketches``: the same as the sketch of their union."""
    parts = list(sketches)
    if not parts:
        return Sketch(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
    keys = np.concatenate([part.keys for part in parts])
    counts = np.concatenate([part.counts for part in parts])
    unique, inverse = np.unique(keys, return_inverse=True)
    return Sketch(unique, np.bincount(inverse, weights=counts, minlength=len(unique)).astype(np.int64))


def packed_merge(blobs: Iterable[bytes | memoryview]) -> Sketch:
    """Merge stored sketches without building one Sketch per blob: one join of the bytes, one decode."""
    joined = b"".join(bytes(blob) for blob in blobs)
    return sketches_merge([Sketch.from_bytes(joined)])


def _packed_runs(groups: np.ndarray, keys: np.ndarray, counts: np.ndarray, group_count: int) -> list[bytes]:
    """The packed sketch of each group ``0 .. group_count - 1`` from (group, key, count) triples in any
    order: per group, the keys sorted and unique with their counts added, exactly what ``to_bytes`` of
    that group's ``sketch_of`` / ``sketches_merge`` writes."""
    order = np.lexsort((keys, groups))
    groups, keys, counts = groups[order], keys[order], counts[order]
    starts = np.flatnonzero(np.concatenate(([True], (groups[1:] != groups[:-1]) | (keys[1:] != keys[:-1]))))
    pairs = np.empty(len(starts), dtype=_PAIR)
    pairs["key"] = keys[starts]
    pairs["count"] = np.add.reduceat(counts, starts) if len(starts) else counts[:0]
    packed = pairs.tobytes()
    bounds = np.searchsorted(groups[starts], np.arange(group_count + 1)) * _PAIR.itemsize
    return [packed[low:high] for low, high in itertools.pairwise(bounds.tolist())]


def packed_sketches_of(values: np.ndarray, sizes: np.ndarray) -> list[bytes]:
    """The packed sketch (``sketch_of(...).to_bytes()``) of each consecutive run of ``sizes[i]`` values
    of ``values``, in one pass over all of them: the fold summarises thousands of minutes per chunk, and
    numpy's per-call overhead for a one-point minute is far larger than its bucket math."""
    sizes = np.asarray(sizes, dtype=np.int64)
    groups = np.repeat(np.arange(len(sizes), dtype=np.int64), sizes)
    keys = value_keys(np.asarray(values, dtype=float))
    return _packed_runs(groups, keys, np.ones(len(keys), dtype=np.int64), len(sizes))


def packed_merges(blob_groups: list[list[bytes]]) -> list[bytes]:
    """``packed_merge(blobs).to_bytes()`` of each list of stored sketches, in one pass. A list of one
    stored sketch is that sketch as it is (stored sketches are already sorted and unique), which is
    every hour of a series with one point an hour."""
    merged: list[bytes] = [bytes(blobs[0]) if len(blobs) == 1 else b"" for blobs in blob_groups]
    several = [index for index, blobs in enumerate(blob_groups) if len(blobs) > 1]
    if not several:
        return merged
    joined = [b"".join(blob_groups[index]) for index in several]
    pairs = np.frombuffer(b"".join(joined), dtype=_PAIR)
    groups = np.repeat(np.arange(len(several), dtype=np.int64), [len(j) // _PAIR.itemsize for j in joined])
    runs = _packed_runs(groups, pairs["key"].astype(np.int64), pairs["count"].astype(np.int64), len(several))
    for index, packed in zip(several, runs, strict=True):
        merged[index] = packed
    return merged
