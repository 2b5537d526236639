"""Which parts of a window come from where (PRODUCT.md §9): hour rollups for the whole hours, minute
rollups for the whole minutes at the edges, raw points for the rest.

The window is ``start < ts <= end`` (PRODUCT.md §1) while a rollup covers ``[start, start + period)``, so
the minute holding ``start`` (whose ``ts == start`` points are outside) and the minute holding ``end``
(whose points after ``end`` are outside) are read raw, as is everything the fold has not reached
(``folded_until`` onwards) and everything from the first minute marked dirty onwards: late points not
folded yet. So the rollup part is always the exact summary of its raw points.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import OuterRef, Q, Subquery
from django.utils import timezone

from readiness.telemetry.models import MetricRollup, RollupDirtyMinute, RollupWatermark
from readiness.telemetry.rollups.fold import HOUR, MINUTE, hour_of, raw_horizon
from readiness.telemetry.rollups.marks import minute_of

# Up to this many points in a window, percentiles are computed exactly from the raw points (when they
# are all still kept); beyond, from the merged sketches (PRODUCT.md §9).
EXACT_PERCENTILE_MAX_POINTS = 100_000


@dataclass(frozen=True)
class WindowPlan:
    """``raw``: a filter on MetricPoint.ts for the raw part; ``rollups``: a filter on MetricRollup rows
    (resolution and start) for the rest; ``uses_rollups`` False means all raw."""

    raw: Q
    rollups: Q = field(default_factory=Q)
    uses_rollups: bool = False


def window_plan(
    *, project_id: int, metric: str, start: datetime, end: datetime, now: datetime | None = None
) -> WindowPlan:
    """The plan of one window; ``now`` (the evaluation's, else the clock's) places the raw horizon."""
    return window_plans(project_id=project_id, metric=metric, windows=[(start, end)], now=now)[0]


def window_plans(
    *,
    project_id: int,
    metric: str,
    windows: Sequence[tuple[datetime, datetime]],
    now: datetime | None = None,
) -> list[WindowPlan]:
    """The plan of each ``(start, end)`` window of one metric, in one query: the watermark, and the
    first dirty minute of the series inside each window (an evaluation's 24 h, 7 d and 30 d at once)."""
    horizon = raw_horizon(now or timezone.now())
    firsts = [minute_of(start) + MINUTE for start, _ in windows]
    dirty = {
        f"dirty_{index}": Subquery(
            RollupDirtyMinute.objects.filter(
                project_id=project_id,
                metric=metric,
                minute__gte=max(first, horizon),
                minute__lt=OuterRef("folded_until"),
            )
            .filter(minute__lt=minute_of(end))
            .order_by("minute")
            .values("minute")[:1]
        )
        for index, (first, (_, end)) in enumerate(zip(firsts, windows, strict=True))
    }
    row = RollupWatermark.objects.filter(pk=1).annotate(**dirty).values_list("folded_until", *dirty).first()
    return [
        _plan(start, end, first, folded_until=row[0], first_dirty=row[1 + index])
        if row is not None
        else WindowPlan(raw=Q(ts__gt=start, ts__lte=end))
        for index, (first, (start, end)) in enumerate(zip(firsts, windows, strict=True))
    ]


def _plan(
    start: datetime, end: datetime, first: datetime, *, folded_until: datetime, first_dirty: datetime | None
) -> WindowPlan:
    """Rollups for the whole minutes from ``first`` up to the watermark or the first dirty minute."""
    last = min(minute_of(end), folded_until, *([first_dirty] if first_dirty is not None else []))
    if last <= first:
        return WindowPlan(raw=Q(ts__gt=start, ts__lte=end))
    raw = Q(ts__gt=start, ts__lt=first) | Q(ts__gte=last, ts__lte=end)
    first_hour = hour_of(first) if hour_of(first) == first else hour_of(first) + HOUR
    last_hour = hour_of(last)
    minute_rows = Q(resolution=MetricRollup.Resolution.MINUTE)
    if first_hour < last_hour:
        rollups = (
            Q(resolution=MetricRollup.Resolution.HOUR, start__gte=first_hour, start__lt=last_hour)
            | (minute_rows & Q(start__gte=first, start__lt=first_hour))
            | (minute_rows & Q(start__gte=last_hour, start__lt=last))
        )
    else:
        rollups = minute_rows & Q(start__gte=first, start__lt=last)
    return WindowPlan(raw=raw, rollups=rollups, uses_rollups=True)
