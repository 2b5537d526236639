"""Reads behind the printable go/no-go report: the latest scorecard shaped as on the scorecard page,
the decision timeline, and the series of the metric criteria that fail or warn, each against its
threshold, drawn as server-side SVG (readiness/dashboard/common/svg.py).

The report's cost is bounded whatever the project's size: the scorecard page's two queries, two for
the timeline, one for the charted criteria's definitions, one for the signers' names, and the metric
selector's queries for at most ``MAX_CHARTS`` charts (a one-page report has room for no more).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model

from readiness.dashboard.common.display import (
    DECISION_LABELS,
    DIMENSION_LABELS,
    ShowsStatus,
    format_number,
)
from readiness.dashboard.common.svg import LineChart, Timeline, decision_timeline, line_chart
from readiness.dashboard.scorecard.scorecards import (
    BlockerLine,
    DimensionColumn,
    ScorecardPage,
    requirement,
    scorecard_page,
)
from readiness.projects.models import Project
from readiness.scoring.engine import parse_window
from readiness.scoring.models import Scorecard
from readiness.telemetry.series import metric_summary

MAX_CHARTS = 4
SIGNOFF_BLOCKERS = frozenset({"signoff_missing", "signoff_stale"})
TIMELINE_DAYS = 90
# Failing first: a one-page report shows what blocks before what merely warns.
_CHART_STATUSES = {"fail": 0, "warn": 1}


@dataclass(frozen=True)
class SeriesChart(ShowsStatus):
    """One metric criterion's series over its window, with its threshold and warn lines."""

    key: str
    title: str
    dimension: str
    status: str
    value: float | None
    requirement: str
    metric: str
    aggregation: str
    window: str
    count: int
    chart: LineChart | None  # None: no point in the window

    @property
    def dimension_label(self) -> str:
        return DIMENSION_LABELS.get(self.dimension, self.dimension)


@dataclass(frozen=True)
class DecisionSpell:
    since: datetime
    decision: str

    @property
    def label(self) -> str:
        return DECISION_LABELS.get(self.decision, self.decision)


@dataclass(frozen=True)
class ReportPage:
    page: ScorecardPage
    timeline: Timeline
    timeline_start: datetime
    spells: list[DecisionSpell]  # the timeline in words, for print and screen readers
    charts: list[SeriesChart]
    charts_left_out: int
    dimensions: list[tuple[DimensionColumn, str | None]]  # each column with who signed it off, by name
    # The scorecard's blockers split for one page: criteria (and a prohibited tier) each get a row with
    # their remediation; missing or stale sign-offs share one line, their remediation being the same.
    work: list[BlockerLine]
    signoffs: list[BlockerLine]
    timeline_days: int = TIMELINE_DAYS


def report_page(*, project: Project, now: datetime) -> ReportPage:
    """``project`` comes with its owners selected, as for ``scorecard_page``."""
    page = scorecard_page(project=project)
    start = now - timedelta(days=TIMELINE_DAYS)
    decisions = _decisions_since(project=project, start=start)
    timeline = decision_timeline(decisions=decisions, start=start, end=now)
    spells = [DecisionSpell(since=band.since, decision=band.decision) for band in timeline.bands]
    failing = _failing_metric_results(page.scorecard.payload)
    signers = _signers(page)
    charts = _series_charts(project=project, results=failing[:MAX_CHARTS], end=page.scorecard.computed_at)
    return ReportPage(
        page=page,
        timeline=timeline,
        timeline_start=start,
        spells=spells,
        charts=charts,
        charts_left_out=max(0, len(failing) - MAX_CHARTS),
        work=[blocker for blocker in page.blockers if blocker.status not in SIGNOFF_BLOCKERS],
        signoffs=[blocker for blocker in page.blockers if blocker.status in SIGNOFF_BLOCKERS],
        dimensions=[
            (column, signers.get(column.signoff_by or "", column.signoff_by)) for column in page.columns
        ],
    )


def _decisions_since(*, project: Project, start: datetime) -> list[tuple[datetime, str]]:
    """The decisions of the scorecards after ``start``, oldest first, led by the one in force at
    ``start`` (the newest before it), so the timeline opens with the decision of that day."""
    opening = (
        Scorecard.objects.latest_for(project)
        .filter(computed_at__lte=start)
        .values_list("computed_at", "decision")
        .first()
    )
    within = list(
        Scorecard.objects.filter(project=project, computed_at__gt=start)
        .order_by("computed_at", "id")
        .values_list("computed_at", "decision")
    )
    return ([opening] if opening else []) + within


def _failing_metric_results(payload: dict[str, Any]) -> list[dict[str, Any]]:
    results = [
        result
        for result in payload.get("criteria") or []
        if result.get("kind") == "metric"
        and result.get("status") in _CHART_STATUSES
        and result.get("applies", True)
    ]
    return sorted(results, key=lambda result: _CHART_STATUSES[result["status"]])


def _series_charts(*, project: Project, results: list[dict[str, Any]], end: datetime) -> list[SeriesChart]:
    """Each chart's window ends when the scorecard was computed: the line shows what the decision saw."""
    if not results:
        return []
    definitions = {
        row["key"]: row
        for row in project.criteria.filter(key__in=[result["key"] for result in results]).values(
            "key", "metric", "labels", "aggregation", "window", "op"
        )
    }
    charts = []
    for result in results:
        definition = definitions.get(result["key"])
        if definition is None:  # deleted since the scorecard was stored: nothing left to chart
            continue
        window = parse_window(definition["window"])
        summary = metric_summary(
            project=project,
            metric=definition["metric"],
            aggregation=definition["aggregation"],
            window=window,
            now=end,
            labels=definition["labels"] or None,
        )
        guides = []
        if result.get("threshold") is not None:
            guides.append((float(result["threshold"]), f"threshold {definition['op']} ", "threshold"))
        if result.get("warn_threshold") is not None:
            guides.append((float(result["warn_threshold"]), "warn ", "warn"))
        chart = None
        if summary.series:
            chart = line_chart(
                series=[(point.ts, point.value) for point in summary.series],
                start=end - window,
                end=end,
                guides=[(value, label + format_number(value), kind) for value, label, kind in guides],
            )
        charts.append(
            SeriesChart(
                key=result["key"],
                title=result.get("title") or result["key"],
                dimension=result.get("dimension") or "",
                status=result["status"],
                value=result.get("value"),
                requirement=requirement(
                    kind="metric",
                    op=definition["op"],
                    method="",
                    threshold=result.get("threshold"),
                    warn_threshold=result.get("warn_threshold"),
                ),
                metric=definition["metric"],
                aggregation=definition["aggregation"],
                window=definition["window"],
                count=summary.count,
                chart=chart,
            )
        )
    return charts


def _signers(page: ScorecardPage) -> dict[str, str]:
    """Full names of the people who signed off, in one query: the payload names them by username."""
    usernames = {column.signoff_by for column in page.columns if column.signoff_by}
    if not usernames:
        return {}
    model = get_user_model()
    signers = {}
    for user in model.objects.filter(**{f"{model.USERNAME_FIELD}__in": usernames}):
        full = user.get_full_name()
        signers[user.get_username()] = f"{full} ({user.get_username()})" if full else user.get_username()
    return signers
