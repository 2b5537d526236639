"""The scorecard page's chart data: each metric criterion's series over its window with its threshold
and warn lines, drift distributions (reference against current), health-check availability and latency
per target with each target's last probe; and the decision history (``decision_timeline``), which an
action's answer re-renders without the charts.

Everything comes in a bounded number of queries whatever the number of criteria (series through
``scorecard.series``, one query each for drift results, health checks and scorecards). Drift
charts compute nothing: they draw the stored result the scorecard's evaluation read (its bins and its
PSI or KS p-value, ``readiness.scoring.drift.selectors``), so a chart never disagrees with the decision. The
figures go into the page once, with ``json_script``; ``static/dashboard/charts.js`` draws them, and the
captions written here say the same in words, so the page reads without JavaScript too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

from readiness.dashboard.common.display import format_number
from readiness.dashboard.scorecard.scorecards import CriterionLine
from readiness.dashboard.scorecard.series import Window, chart_series
from readiness.projects.models import Project
from readiness.projects.vocabulary import Dimension
from readiness.scoring.drift.selectors import drift_results_of_scorecard
from readiness.scoring.engine import parse_window
from readiness.scoring.inputs import UNITS
from readiness.scoring.models import Criterion, DriftResult, Kind, Scorecard
from readiness.telemetry.models import HealthCheck
from readiness.telemetry.series import SeriesPoint

# A week shows an outage and the daily rhythm of latency; the 30-day availability criterion has its own
# chart when a project defines one.
HEALTH_WINDOW = timedelta(days=7)
# The decision timeline: enough scorecards for months of a busy project, few enough for one chart.
TIMELINE_LIMIT = 500
_DIMENSION_ORDER = {dim: n for n, dim in enumerate(Dimension.values)}


def _stamp(ts: datetime) -> str:
    """ "YYYY-MM-DD HH:MM:SS", which Plotly reads as given, with no time zone of its own: UTC, as the axes
    say. isoformat() then a slice: twice as fast as strftime() on a page of a few thousand points."""
    return ts.isoformat(" ", "seconds")[:19]


def _x(points: list[SeriesPoint]) -> list[str]:
    return [_stamp(point.ts) for point in points]


def _y(points: list[SeriesPoint], scale: float = 1.0) -> list[float]:
    return [float(f"{point.value * scale:.6g}") for point in points]


@dataclass(frozen=True)
class MetricChart:
    line: CriterionLine
    criterion: Criterion
    points: list[SeriesPoint]
    start: datetime  # the criterion's window, as the engine reads it: start < ts <= end
    end: datetime

    @property
    def element_id(self) -> str:
        return f"chart-{self.line.key}"

    @property
    def caption(self) -> str:
        c = self.criterion
        labels = ", ".join(f"{k}={v}" for k, v in sorted((c.labels or {}).items()))
        scope = f"{c.metric}{f' ({labels})' if labels else ''}"
        what = f"{c.aggregation} of {scope} over {c.window}: {self.line.value}"
        return f"{what}{f'; {self.line.requirement}' if self.line.requirement else ''}."

    def data(self) -> dict[str, Any]:
        c = self.criterion
        return {
            "id": self.element_id,
            "kind": "metric",
            "title": self.line.title,
            "metric": c.metric,
            "unit": UNITS.get(c.metric, ""),
            "start": _stamp(self.start),
            "end": _stamp(self.end),
            "x": _x(self.points),
            "y": _y(self.points),
            "threshold": c.threshold,
            "warn": c.warn_threshold,
            "op": c.op,
        }


@dataclass(frozen=True)
class DriftChart:
    line: CriterionLine
    criterion: Criterion
    result: DriftResult | None  # the stored result the scorecard's evaluation read
    note: str  # why there is nothing to draw, or where the figures come from

    @property
    def bins(self) -> dict[str, list[float]]:
        return (self.result.bins if self.result is not None else None) or {}

    @property
    def edges(self) -> list[float]:
        return list(self.bins.get("edges") or [])

    @property
    def reference(self) -> list[float]:  # shares per bin of the reference's deciles
        return list(self.bins.get("reference") or [])

    @property
    def current(self) -> list[float]:
        return list(self.bins.get("current") or [])

    @property
    def element_id(self) -> str:
        return f"chart-{self.line.key}"

    @property
    def drawable(self) -> bool:
        return bool(self.edges and self.reference and self.current)

    @property
    def caption(self) -> str:
        c = self.criterion
        requirement = f"; {self.line.requirement}" if self.line.requirement else ""
        counts = (
            f"{self.result.reference_count:,} reference and {self.result.current_count:,} current points. "
            if self.result is not None
            else ""
        )
        return (
            f"{c.metric} over the last {c.window} against the reference period "
            f"{c.reference_start:%-d %b %Y} to {c.reference_end:%-d %b %Y}: {self.line.value}{requirement}. "
            f"{counts}{self.note}"
        ).strip()

    def data(self) -> dict[str, Any]:
        return {
            "id": self.element_id,
            "kind": "drift",
            "title": self.line.title,
            # The stored figure the bins belong to: the scorecard's own value for this criterion.
            "method": self.result.method if self.result is not None else self.criterion.method,
            "value": self.result.value if self.result is not None else None,
            "ranges": _bin_ranges(self.edges),
            "reference": [round(share * 100, 2) for share in self.reference],
            "current": [round(share * 100, 2) for share in self.current],
        }


def _bin_ranges(edges: list[float]) -> list[str]:
    """What each decile bin holds, for the chart's hover: "< 0.17", "0.17 to 0.22", …, "≥ 0.54"."""
    if not edges:
        return []
    shown = [format_number(edge) for edge in edges]
    return [f"< {shown[0]}", *(f"{lo} to {hi}" for lo, hi in pairwise(shown)), f"≥ {shown[-1]}"]


@dataclass(frozen=True)
class HealthTarget:
    check: HealthCheck
    up: list[SeriesPoint]  # bucket means of health.up: the availability of each stretch of the week
    latency: list[SeriesPoint]
    probes: int
    availability: float | None  # mean of health.up over the week, 0 to 1

    @property
    def state(self) -> str:
        if not self.check.enabled:
            return "paused"
        if self.check.last_up is None:
            return "unknown"
        return "up" if self.check.last_up else "down"

    @property
    def state_label(self) -> str:
        return {"paused": "Paused", "unknown": "Not probed yet", "up": "Up", "down": "Down"}[self.state]

    @property
    def symbol(self) -> str:
        return {"paused": "—", "unknown": "?", "up": "✓", "down": "✗"}[self.state]

    @property
    def availability_percent(self) -> str:
        return "—" if self.availability is None else f"{self.availability * 100:.2f}%"


@dataclass(frozen=True)
class DecisionChange:
    at: datetime
    before: str
    after: str


@dataclass(frozen=True)
class Timeline:
    points: list[tuple[datetime, str]]  # (computed_at, decision), oldest first
    changes: list[DecisionChange]  # newest first

    def data(self) -> dict[str, Any]:
        return {
            "id": "chart-decisions",
            "kind": "timeline",
            "x": [_stamp(at) for at, _ in self.points],
            "y": [1 if decision == "go" else 0 for _, decision in self.points],
        }


@dataclass(frozen=True)
class ScorecardCharts:
    metrics: list[MetricChart]
    drift: list[DriftChart]
    health: list[HealthTarget]
    payload: dict[str, Any]  # what charts.js draws, for json_script (the timeline has its own)


def scorecard_charts(
    *,
    project: Project,
    criteria: list[Criterion],
    lines: list[CriterionLine],
    scorecard_at: datetime,
    now: datetime,
) -> ScorecardCharts:
    """``lines`` are the shown scorecard's criteria, computed at ``scorecard_at``: the drift charts draw
    what that evaluation read; the metric and health series run up to ``now``."""
    by_key = {line.key: line for line in lines}
    ordered = sorted(
        (c for c in criteria if c.key in by_key),
        key=lambda c: (_DIMENSION_ORDER.get(c.dimension, 9), c.position, c.key),
    )
    # A window the engine cannot read (the database does not check its text) gets no chart.
    metric_windows = [
        (c, length) for c in ordered if c.kind == Kind.METRIC and (length := _window(c)) is not None
    ]
    checks = list(HealthCheck.objects.filter(project=project).order_by("name"))

    # Every series of the page at once: metric criteria, then each target's health.up and latency.
    windows = [Window(c.metric, now - length, now, c.labels or {}) for c, length in metric_windows]
    for check in checks:
        labels = {"target": check.name}
        windows.append(Window("health.up", now - HEALTH_WINDOW, now, labels))
        windows.append(Window("health.latency_ms", now - HEALTH_WINDOW, now, labels))
    series = chart_series(project_id=project.pk, windows=windows)

    metrics = [
        MetricChart(line=by_key[c.key], criterion=c, points=series[n].points, start=now - length, end=now)
        for n, (c, length) in enumerate(metric_windows)
    ]
    health = []
    for n, check in enumerate(checks):
        up, latency = series[len(metric_windows) + 2 * n], series[len(metric_windows) + 2 * n + 1]
        health.append(
            HealthTarget(
                check=check,
                up=up.points,
                latency=latency.points,
                probes=up.count,
                availability=up.mean,
            )
        )
    drift = _drift_charts([c for c in ordered if c.kind == Kind.DRIFT], by_key, scorecard_at=scorecard_at)

    payload: dict[str, Any] = {
        "metrics": [chart.data() for chart in metrics],
        "drift": [chart.data() for chart in drift if chart.drawable],
        "health": _health_data(health, start=now - HEALTH_WINDOW, end=now),
    }
    return ScorecardCharts(metrics=metrics, drift=drift, health=health, payload=payload)


def _window(criterion: Criterion) -> timedelta | None:
    try:
        return parse_window(criterion.window)
    except ValueError:
        return None


def _health_data(targets: list[HealthTarget], *, start: datetime, end: datetime) -> dict[str, Any] | None:
    if not targets:
        return None
    return {
        "start": _stamp(start),
        "end": _stamp(end),
        "availability": {
            "id": "chart-health-availability",
            "traces": [{"name": t.check.name, "x": _x(t.up), "y": _y(t.up, 100)} for t in targets],
        },
        "latency": {
            "id": "chart-health-latency",
            "traces": [{"name": t.check.name, "x": _x(t.latency), "y": _y(t.latency)} for t in targets],
        },
    }


def _drift_charts(
    criteria: list[Criterion], lines: dict[str, CriterionLine], *, scorecard_at: datetime
) -> list[DriftChart]:
    """Each drift criterion's stored result as the scorecard's evaluation read it: the reference's
    decile edges and both distributions (``bins``), the counts, and the PSI or KS p-value the scorecard
    shows. One query for all."""
    usable = [c for c in criteria if c.reference_start is not None and c.reference_end is not None]
    if not usable:
        return []
    read = drift_results_of_scorecard(
        criteria=usable, computed_at=scorecard_at, as_of={c.pk: lines[c.key].as_of for c in usable}
    )
    charts = []
    for criterion in usable:
        result = read.get(criterion.pk)
        if result is None:
            # Only a scorecard older than the results' retention, or one stored by hand, has none.
            note = "No stored drift result belongs to this scorecard."
        else:
            note = (f"{result.reason[:1].upper()}{result.reason[1:]}. " if result.reason else "") + (
                f"Drift job result of {result.computed_at:%-d %b %Y, %H:%M} UTC."
            )
        charts.append(DriftChart(line=lines[criterion.key], criterion=criterion, result=result, note=note))
    return charts


def decision_timeline(*, project: Project) -> Timeline:
    """The decision history of the page's own panel: apart from the charts, as an action swaps it
    (its new scorecard joins it) without drawing a chart again."""
    newest = list(
        Scorecard.objects.filter(project=project)
        .order_by("-computed_at", "-id")
        .values_list("computed_at", "decision")[:TIMELINE_LIMIT]
    )
    points = newest[::-1]
    changes = [
        DecisionChange(at=at, before=points[n - 1][1], after=decision)
        for n, (at, decision) in enumerate(points)
        if n and decision != points[n - 1][1]
    ]
    return Timeline(points=points, changes=changes[::-1])
