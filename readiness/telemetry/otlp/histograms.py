"""Histogram data points as bucket counts: validation, buckets, and the difference of cumulative points.

Explicit and exponential histograms become one ``HistogramState`` (count, sum, bucket counts, start
and time). For cumulative temporality the receiver keeps the previous state of each series and maps
the difference, as the Collector's ``cumulativetodelta`` processor does:

- the first data point of a series covers ``(start_time, time]``: mapped as it is when it has a
  start time; without one it covers an unknown span, so it is only remembered;
- a counter reset (a new ``start_time_unix_nano``, a count or a bucket count going down, or a
  bucket layout that cannot be subtracted) starts over: the data point is mapped as it is;
- a data point not newer than the remembered one (a repeat, or out of order) is rejected;
- an exponential histogram whose scale went down since (SDKs downscale as the range grows) is
  subtracted after merging the previous point's buckets to the new scale, which is exact.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.metrics.v1.metrics_pb2 import ExponentialHistogramDataPoint, HistogramDataPoint

from readiness.telemetry.otlp.naming import Rejection
from readiness.telemetry.otlp.quantiles import Bucket

# Real histograms have tens of buckets (160 at most for the SDKs' exponential default); the bound
# keeps one data point's work small. A 5 MiB body could otherwise hold five million varint buckets.
MAX_BUCKETS = 10_000
# The OpenTelemetry SDK specification's range for exponential histograms.
MIN_SCALE, MAX_SCALE = -10, 20


@dataclass(frozen=True)
class ExplicitCounts:
    bounds: tuple[float, ...]
    counts: tuple[int, ...]  # len(bounds) + 1, or empty for a data point without buckets

    def buckets(self) -> list[Bucket]:
        if not self.counts:
            return []
        edges = (-math.inf, *self.bounds, math.inf)
        return [Bucket(edges[i], edges[i + 1], count) for i, count in enumerate(self.counts)]

    def minus(self, earlier: ExplicitCounts | ExponentialCounts) -> ExplicitCounts | None:
        if not isinstance(earlier, ExplicitCounts) or earlier.bounds != self.bounds:
            return None
        if len(earlier.counts) != len(self.counts):
            return None
        counts = tuple(now - before for now, before in zip(self.counts, earlier.counts, strict=True))
        return None if any(count < 0 for count in counts) else ExplicitCounts(self.bounds, counts)


@dataclass(frozen=True)
class ExponentialCounts:
    scale: int
    zero_threshold: float
    zero_count: int
    positive_offset: int
    positive: tuple[int, ...]
    negative_offset: int
    negative: tuple[int, ...]

    def buckets(self) -> list[Bucket]:
        """Ascending: negative buckets from the most negative, the zero bucket, then positive ones.

        Buckets reaching into the zero region ``[-zero_threshold, zero_threshold]`` are cut at its
        edge: their observations lie beyond it (the rest counted as zero), and the buckets stay in
        order even when an exporter counts observations in a bucket wholly inside the region.
        """
        edge = self.zero_threshold
        negative = [
            Bucket(min(-_power(index + 1, self.scale), -edge), min(-_power(index, self.scale), -edge), count)
            for index, count in reversed(list(enumerate(self.negative, self.negative_offset)))
        ]
        zero = [Bucket(-edge, edge, self.zero_count)]
        positive = [
            Bucket(max(_power(index, self.scale), edge), max(_power(index + 1, self.scale), edge), count)
            for index, count in enumerate(self.positive, self.positive_offset)
        ]
        return negative + zero + positive

    def minus(self, earlier: ExplicitCounts | ExponentialCounts) -> ExponentialCounts | None:
        if not isinstance(earlier, ExponentialCounts) or earlier.zero_threshold != self.zero_threshold:
            return None
        scale = min(self.scale, earlier.scale)
        positive = _subtract(
            _by_index(self.positive_offset, self.positive, self.scale - scale),
            _by_index(earlier.positive_offset, earlier.positive, earlier.scale - scale),
        )
        negative = _subtract(
            _by_index(self.negative_offset, self.negative, self.scale - scale),
            _by_index(earlier.negative_offset, earlier.negative, earlier.scale - scale),
        )
        zero_count = self.zero_count - earlier.zero_count
        if positive is None or negative is None or zero_count < 0:
            return None
        positive_offset, positive_counts = _dense(positive)
        negative_offset, negative_counts = _dense(negative)
        return ExponentialCounts(
            scale,
            self.zero_threshold,
            zero_count,
            positive_offset,
            positive_counts,
            negative_offset,
            negative_counts,
        )


@dataclass(frozen=True)
class HistogramState:
    """One histogram data point as counts: what is mapped, and what a cumulative series remembers."""

    start_time_unix_nano: int
    time_unix_nano: int
    count: int
    sum: float | None
    counts: ExplicitCounts | ExponentialCounts

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, for a memory kept in a database (``from_dict`` reads it back)."""
        counts = self.counts
        if isinstance(counts, ExplicitCounts):
            buckets: dict[str, Any] = {
                "kind": "explicit",
                "bounds": list(counts.bounds),
                "counts": list(counts.counts),
            }
        else:
            buckets = {
                "kind": "exponential",
                "scale": counts.scale,
                "zero_threshold": counts.zero_threshold,
                "zero_count": counts.zero_count,
                "positive": [counts.positive_offset, list(counts.positive)],
                "negative": [counts.negative_offset, list(counts.negative)],
            }
        return {
            "start_time_unix_nano": self.start_time_unix_nano,
            "time_unix_nano": self.time_unix_nano,
            "count": self.count,
            "sum": self.sum,
            "buckets": buckets,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HistogramState:
        buckets = data["buckets"]
        counts: ExplicitCounts | ExponentialCounts
        if buckets["kind"] == "explicit":
            counts = ExplicitCounts(tuple(buckets["bounds"]), tuple(buckets["counts"]))
        else:
            counts = ExponentialCounts(
                buckets["scale"],
                buckets["zero_threshold"],
                buckets["zero_count"],
                buckets["positive"][0],
                tuple(buckets["positive"][1]),
                buckets["negative"][0],
                tuple(buckets["negative"][1]),
            )
        return cls(data["start_time_unix_nano"], data["time_unix_nano"], data["count"], data["sum"], counts)


def explicit_state(point: HistogramDataPoint) -> HistogramState | Rejection:
    bounds, counts = tuple(point.explicit_bounds), tuple(point.bucket_counts)
    if len(counts) > MAX_BUCKETS:
        return Rejection(f"more than {MAX_BUCKETS:,} buckets")
    if counts and len(counts) != len(bounds) + 1:
        return Rejection(
            f"{len(counts)} bucket counts for {len(bounds)} bounds (needs one more count than bounds)"
        )
    if not all(math.isfinite(bound) for bound in bounds) or any(
        a >= b for a, b in itertools.pairwise(bounds)
    ):
        return Rejection("explicit bounds must be finite and strictly increasing")
    if counts and sum(counts) != point.count:
        return Rejection(f"bucket counts add up to {sum(counts)}, not to the count {point.count}")
    return _state(point, ExplicitCounts(bounds, counts) if counts else ExplicitCounts((), ()))


def exponential_state(point: ExponentialHistogramDataPoint) -> HistogramState | Rejection:
    if not MIN_SCALE <= point.scale <= MAX_SCALE:
        return Rejection(f"scale {point.scale} is outside {MIN_SCALE} to {MAX_SCALE}")
    positive, negative = tuple(point.positive.bucket_counts), tuple(point.negative.bucket_counts)
    if len(positive) + len(negative) > MAX_BUCKETS:
        return Rejection(f"more than {MAX_BUCKETS:,} buckets")
    if not (math.isfinite(point.zero_threshold) and point.zero_threshold >= 0):
        return Rejection("zero_threshold must be a finite number, 0 or more")
    total = point.zero_count + sum(positive) + sum(negative)
    if total != point.count:
        return Rejection(f"bucket counts add up to {total}, not to the count {point.count}")
    counts = ExponentialCounts(
        point.scale,
        point.zero_threshold,
        point.zero_count,
        point.positive.offset,
        positive,
        point.negative.offset,
        negative,
    )
    try:
        counts.buckets()
    except OverflowError:
        return Rejection("bucket bounds beyond the range of a double")
    return _state(point, counts)


def extremes(point: HistogramDataPoint | ExponentialHistogramDataPoint) -> tuple[float | None, float | None]:
    """The data point's ``min`` and ``max``, where present (both optional in OTLP)."""
    minimum = point.min if point.HasField("min") else None
    maximum = point.max if point.HasField("max") else None
    return minimum, maximum


def interval_since(
    previous: HistogramState | None, current: HistogramState
) -> HistogramState | Rejection | None:
    """The observations a cumulative data point adds to its series (None: nothing to map yet)."""
    if previous is None:
        return current if current.start_time_unix_nano else None
    if current.time_unix_nano <= previous.time_unix_nano:
        return Rejection("not newer than the previous data point of its series (a repeat, or out of order)")
    if current.start_time_unix_nano != previous.start_time_unix_nano or current.count < previous.count:
        return current
    counts = current.counts.minus(previous.counts)
    if counts is None:
        return current
    count = current.count - previous.count
    if current.sum is None or previous.sum is None:
        interval_sum = None
    else:
        # Exactly 0 for an interval without observations, whatever the floats' rounding.
        interval_sum = current.sum - previous.sum if count else 0.0
    return HistogramState(previous.time_unix_nano, current.time_unix_nano, count, interval_sum, counts)


def _state(
    point: HistogramDataPoint | ExponentialHistogramDataPoint, counts: ExplicitCounts | ExponentialCounts
) -> HistogramState | Rejection:
    total = point.sum if point.HasField("sum") else None
    minimum, maximum = extremes(point)
    if any(value is not None and not math.isfinite(value) for value in (total, minimum, maximum)):
        return Rejection("sum, min and max must be finite numbers")
    return HistogramState(point.start_time_unix_nano, point.time_unix_nano, point.count, total, counts)


def _power(index: int, scale: int) -> float:
    """base ** index with base = 2 ** (2 ** -scale), exact for scale <= 0 (raises OverflowError)."""
    if scale <= 0:
        return math.ldexp(1.0, index << -scale)
    fraction = (index & ((1 << scale) - 1)) / (1 << scale)
    return math.ldexp(2.0**fraction, index >> scale)


def _by_index(offset: int, counts: Sequence[int], shift: int) -> dict[int, int]:
    """Counts by bucket index, merged ``shift`` scales down (index i becomes i >> shift, exactly)."""
    merged: dict[int, int] = {}
    for index, count in enumerate(counts, offset):
        if count:
            merged[index >> shift] = merged.get(index >> shift, 0) + count
    return merged


def _subtract(now: dict[int, int], before: dict[int, int]) -> dict[int, int] | None:
    difference = dict(now)
    for index, count in before.items():
        difference[index] = difference.get(index, 0) - count
        if difference[index] < 0:
            return None
    return {index: count for index, count in difference.items() if count}


def _dense(counts: dict[int, int]) -> tuple[int, tuple[int, ...]]:
    if not counts:
        return 0, ()
    low, high = min(counts), max(counts)
    return low, tuple(counts.get(index, 0) for index in range(low, high + 1))
