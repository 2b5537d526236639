"""Percentiles estimated from histogram buckets, by linear interpolation inside the bucket.

The estimate follows the definition the evaluation uses for raw points (PRODUCT.md §1: linear
interpolation between closest ranks, numpy's default): quantile ``q`` of ``n`` observations sits at
position ``h = (n - 1) q`` between the order statistics ``floor(h)`` and ``ceil(h)``. A histogram
does not know where an observation lies inside its bucket, so each order statistic is placed by
spreading the bucket's ``c`` observations evenly over it: the ``r``-th (0-based) at
``lower + (upper - lower) (r + 1) / (c + 1)``, the expected place of the ``r``-th of ``c`` uniform
draws. The estimate therefore always lies between the buckets of the two order statistics around
the true quantile, and inside that one bucket when both share it (tests/telemetry/otlp/test_quantiles.py).

Buckets with an infinite edge (the explicit histogram's first and overflow buckets) get finite ones:

- the lowest non-empty bucket's lower edge is the data point's ``min`` when present; otherwise 0
  when the observations may be assumed non-negative (the data point has a ``sum``, which OTLP fills
  only for non-negative observations, and the bucket's upper edge is positive); otherwise its upper
  edge, so its observations count at its bound;
- the highest non-empty bucket's upper edge is the data point's ``max`` when present; otherwise its
  lower edge (for the overflow bucket: the last explicit bound).

``min`` and ``max`` also tighten a finite edge they fall inside. For a cumulative series they cover
the whole series, not one interval: still true bounds of the interval's observations, only looser.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

PERCENTILES: dict[str, float] = {"p50": 0.50, "p90": 0.90, "p95": 0.95, "p99": 0.99}


@dataclass(frozen=True, slots=True)
class Bucket:
    lower: float
    upper: float
    count: int


def with_finite_edges(
    buckets: Sequence[Bucket], *, minimum: float | None, maximum: float | None, non_negative: bool
) -> list[Bucket] | None:
    """The non-empty buckets, in order, with finite edges; None when no finite edge can be had."""
    occupied = [bucket for bucket in buckets if bucket.count > 0]
    if not occupied:
        return None
    first, last = occupied[0], occupied[-1]
    lower = first.lower
    if minimum is not None:
        lower = min(max(lower, minimum), first.upper)
    if lower == -math.inf:
        lower = 0.0 if non_negative and first.upper > 0 else first.upper
    upper = last.upper
    if maximum is not None:
        upper = max(min(upper, maximum), last.lower)
    if upper == math.inf:
        upper = last.lower  # the last bound; still infinite for a histogram without bounds
    if first is last:
        # One bucket: an inconsistent max below min must not turn it inside out.
        occupied[0] = replace(first, lower=lower, upper=upper if upper == -math.inf else max(upper, lower))
    else:
        occupied[0], occupied[-1] = replace(first, lower=lower), replace(last, upper=upper)
    if not all(math.isfinite(bucket.lower) and math.isfinite(bucket.upper) for bucket in occupied):
        return None  # a histogram without bounds and without max: nothing to interpolate towards
    return occupied


def percentiles(buckets: Sequence[Bucket]) -> dict[str, float]:
    """p50, p90, p95 and p99 of non-empty, ordered buckets with finite edges."""
    cumulative: list[int] = []
    total = 0
    for bucket in buckets:
        total += bucket.count
        cumulative.append(total)
    if total == 0:
        return {}
    return {name: _estimate(buckets, cumulative, q) for name, q in PERCENTILES.items()}


def estimate_quantile(buckets: Sequence[Bucket], q: float) -> float:
    """Quantile ``q`` (0 to 1) of non-empty, ordered buckets with finite edges."""
    cumulative: list[int] = []
    total = 0
    for bucket in buckets:
        total += bucket.count
        cumulative.append(total)
    return _estimate(buckets, cumulative, q)


def _estimate(buckets: Sequence[Bucket], cumulative: list[int], q: float) -> float:
    last = cumulative[-1] - 1
    position = last * q
    # Beyond 2**53 observations the float position may round past the last rank.
    rank = min(math.floor(position), last)
    fraction = position - rank
    low = _order_statistic(buckets, cumulative, rank)
    if fraction <= 0 or rank >= last:
        return low
    high = _order_statistic(buckets, cumulative, rank + 1)
    return _between(low, high, fraction)


def _order_statistic(buckets: Sequence[Bucket], cumulative: list[int], rank: int) -> float:
    index = bisect.bisect_right(cumulative, rank)
    bucket = buckets[index]
    before = cumulative[index - 1] if index else 0
    return _between(bucket.lower, bucket.upper, (rank - before + 1) / (bucket.count + 1))


def _between(low: float, high: float, fraction: float) -> float:
    # Weighted rather than low + (high - low) * fraction: the difference of two edges near the
    # double range's ends overflows to infinity. Rounding may still step past an edge: clamped.
    return min(max(low * (1 - fraction) + high * fraction, low), high)
