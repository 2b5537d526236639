"""Reads behind the portfolio page: the visible projects with their latest scorecard, and the
aggregates leadership reads off them (KPIs, the stage funnel, top blockers).

``portfolio_rows`` reads every matching project, for the exports: three queries (the projects with their
standing, their weekly decisions, their stage history); the KPIs, funnel, trend and blockers are then
pure functions over the rows, tested without a database. The page itself counts the same figures in SQL
(``figures``) and reads rows only for what it names.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

import orjson
from django.conf import settings
from django.db.models import F, Min, Q, QuerySet, TextField
from django.db.models.functions import Cast

from readiness.dashboard.common.display import DECISION_LABELS, DIMENSION_LABELS, STATUS_LABELS, status_symbol
from readiness.dashboard.portfolio.trend import (
    TREND_WEEKS,
    decision_as_of,
    trend_week_starts,
    weekly_decisions_of,
)
from readiness.projects.models import Project, StageChange
from readiness.projects.vocabulary import Dimension, Stage
from readiness.scoring.models import Criterion
from readiness.scoring.standings import BlockerKey, blocker_keys

FUNNEL_STAGES: tuple[str, ...] = (Stage.PROTOTYPE, Stage.PILOT, Stage.PRODUCTION)
_STAGE_RANK = {stage: rank for rank, stage in enumerate(FUNNEL_STAGES)}
# Production is where a project should stay: only the stages before it can be "stuck".
STUCK_STAGES = frozenset({Stage.PROTOTYPE, Stage.PILOT})
NOT_EVALUATED = "none"
TOP_BLOCKERS = 8
NAMED_PER_BLOCKER = 4  # projects the page names beside each top blocker
DIMENSIONS: tuple[str, ...] = tuple(Dimension.values)  # an enum's .values is rebuilt on every access


@dataclass(frozen=True)
class PortfolioFilters:
    """The filters of the portfolio page; an empty string means "any"."""

    team: str = ""
    stage: str = ""
    risk_tier: str = ""
    decision: str = ""  # "go", "no_go" or NOT_EVALUATED
    q: str = ""

    @property
    def active(self) -> bool:
        return any((self.team, self.stage, self.risk_tier, self.decision, self.q))


@dataclass(frozen=True)
class DimensionCell:
    dimension: str
    status: str | None  # None: the project has no scorecard yet
    score: float | None
    signoff: str | None

    @property
    def label(self) -> str:
        return DIMENSION_LABELS[self.dimension]

    @property
    def status_label(self) -> str:
        return STATUS_LABELS.get(self.status or "", "Not evaluated")

    @property
    def symbol(self) -> str:
        return status_symbol(self.status)


@dataclass(frozen=True)
class PortfolioRow:
    pk: int
    slug: str
    name: str
    team_slug: str
    team_name: str
    stage: str
    risk_tier: str
    target_date: date | None
    days_in_stage: int
    stuck: bool
    decision: str | None
    target: str | None
    computed_at: datetime | None
    cells: list[DimensionCell]
    blockers: list[dict[str, Any]]
    # What blocks the project, each thing once (blocker_keys); worked out from ``blockers``
    # when not given.
    given_blocker_keys: tuple[BlockerKey, ...] | None = None
    reached_rank: int = -1  # the furthest funnel stage the project ever was in; set from the history
    # (week start, decision of the latest scorecard as of that week's end or None), oldest week first.
    weekly_decisions: tuple[tuple[date, str | None], ...] = ()

    @property
    def decision_key(self) -> str:
        return self.decision or NOT_EVALUATED

    @property
    def blocker_keys(self) -> tuple[BlockerKey, ...]:
        if self.given_blocker_keys is not None:
            return self.given_blocker_keys
        return blocker_keys(self.blockers)

    @property
    def decision_label(self) -> str:
        return DECISION_LABELS[self.decision_key]

    @property
    def decision_symbol(self) -> str:
        return status_symbol(self.decision)


def portfolio_rows(
    *,
    projects: QuerySet[Project],
    filters: PortfolioFilters,
    now: datetime,
    trend_weeks: int = TREND_WEEKS,
) -> list[PortfolioRow]:
    """The ``projects`` (those the reader may see) matching the filters, retired ones included, except
    the stage filter: the funnel is *about* stages, so the caller narrows by stage (``in_stage``) after
    computing it. Each row carries its decision at the end of each of the last ``trend_weeks`` weeks
    (``readiness_trend``). Three queries: the projects with their standing, their stored weekly
    decisions, their stage history."""
    projects = filtered_projects(projects=projects, filters=filters)
    starts = [start.date() for start in trend_week_starts(now=now, weeks=trend_weeks)] if trend_weeks else []
    project_rows = list(row_values(projects))
    stored = weekly_decisions_of(projects, starts[:-1]) if starts else {}
    reached = _reached_ranks(projects)
    rows = []
    for project in project_rows:
        weekly = tuple(
            (
                week,
                decision_as_of(
                    week,
                    stored=stored.get(project["pk"], {}),
                    latest_week=project["latest_week"],
                    latest=project["latest_decision"],
                ),
            )
            for week in starts[:-1]
        )
        if starts:  # the current week's decision is the latest one
            weekly += ((starts[-1], project["latest_decision"]),)
        rows.append(row_from(project, now=now, reached=reached.get(project["pk"]), weekly_decisions=weekly))
    rows.sort(key=lambda row: (row.name.casefold(), row.slug))
    return rows


PROJECT_FIELDS = ("pk", "slug", "name", "team__slug", "team__name", "stage", "risk_tier", "target_date")


def row_values(projects: QuerySet[Project], *extra: str) -> QuerySet:
    """What a row shows of each project, with its standing's latest scorecard: the decision, target,
    time and summary (``scorecard_summary``); and the ``extra`` annotations asked for. The payload,
    compressed and ~17 kB a project, is never read here."""
    return projects.values(
        *PROJECT_FIELDS,
        "stage_changed_at",
        *extra,
        latest_decision=F("standing__decision"),
        latest_week=F("standing__week"),
        latest_at=F("standing__computed_at"),
        latest_target=F("standing__scorecard__target"),
        # As text, parsed by orjson: the JSON field's own json.loads was the page's largest cost at
        # thousands of projects.
        latest_summary=Cast("standing__scorecard__summary", TextField()),
    )


def named_values(projects: QuerySet[Project], *extra: str) -> QuerySet:
    """``row_values`` without the scorecard: for rows the page only names (a link and the days in
    stage), so the database neither joins nor serialises what they do not show."""
    return projects.values(*PROJECT_FIELDS, "stage_changed_at", *extra)


def filtered_projects(*, projects: QuerySet[Project], filters: PortfolioFilters) -> QuerySet[Project]:
    """The ``projects`` matching every filter but the stage (``in_stage``)."""
    if filters.team:
        projects = projects.filter(team__slug=filters.team)
    if filters.risk_tier:
        projects = projects.filter(risk_tier=filters.risk_tier)
    if filters.decision == NOT_EVALUATED:
        projects = projects.filter(standing__isnull=True)
    elif filters.decision:
        projects = projects.filter(standing__decision=filters.decision)
    if filters.q:
        projects = projects.filter(
            Q(name__icontains=filters.q)
            | Q(slug__icontains=filters.q)
            | Q(description__icontains=filters.q)
            | Q(team__name__icontains=filters.q)
        )
    return projects.order_by()


def _reached_ranks(projects: QuerySet) -> dict[int, int]:
    """The furthest funnel stage each project has ever been in, from its stage history."""
    changes = (
        StageChange.objects.filter(project__in=projects.values("pk"), to_stage__in=FUNNEL_STAGES)
        .order_by()  # the model's ordering would join projects and defeat the DISTINCT
        .values_list("project_id", "to_stage")
        .distinct()
    )
    reached: dict[int, int] = {}
    for project_id, stage in changes:
        reached[project_id] = max(reached.get(project_id, -1), _STAGE_RANK[stage])
    return reached


def row_from(
    project: dict[str, Any],
    *,
    now: datetime,
    reached: int | None = None,
    weekly_decisions: tuple[tuple[date, str | None], ...] = (),
) -> PortfolioRow:
    """A row from ``row_values``' (or ``named_values``') record of one project."""
    days = max((now - project["stage_changed_at"]).days, 0)
    stuck = project["stage"] in STUCK_STAGES and days > settings.READINESS_STUCK_AFTER_DAYS
    text = project.get("latest_summary")
    summary: dict[str, Any] = orjson.loads(text) if text else {}
    dimensions: dict[str, Any] = summary.get("dimensions") or {}
    cells = []
    for dim in DIMENSIONS:
        result = dimensions.get(dim) or {}  # scorecard_summary's shape: the sign-off is its state
        cells.append(DimensionCell(dim, result.get("status"), result.get("score"), result.get("signoff")))
    blockers = list(summary.get("blockers") or [])
    # The current stage counts as reached even when the history is incomplete (an imported project).
    current_rank = _STAGE_RANK.get(project["stage"], -1)
    return PortfolioRow(
        pk=project["pk"],
        slug=project["slug"],
        name=project["name"],
        team_slug=project["team__slug"],
        team_name=project["team__name"],
        stage=project["stage"],
        risk_tier=project["risk_tier"],
        target_date=project["target_date"],
        days_in_stage=days,
        stuck=stuck,
        decision=project.get("latest_decision"),
        target=project.get("latest_target"),
        computed_at=project.get("latest_at"),
        cells=cells,
        blockers=blockers,
        given_blocker_keys=blocker_keys(blockers),
        reached_rank=max(current_rank, reached if reached is not None else -1),
        weekly_decisions=weekly_decisions,
    )


def in_stage(rows: list[PortfolioRow], stage: str) -> list[PortfolioRow]:
    """The rows the matrix, KPIs and blockers show: one stage, or by default every stage but retired
    (a retired project is no-go forever and would only dilute "% go")."""
    if stage:
        return [row for row in rows if row.stage == stage]
    return [row for row in rows if row.stage != Stage.RETIRED]


# --- Aggregates (pure) ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PortfolioKPIs:
    projects: int
    go: int
    no_go: int
    not_evaluated: int
    stuck: int

    @property
    def go_percent(self) -> int | None:
        return round(100 * self.go / self.projects) if self.projects else None


def portfolio_kpis(rows: list[PortfolioRow]) -> PortfolioKPIs:
    decisions = Counter(row.decision_key for row in rows)
    return PortfolioKPIs(
        projects=len(rows),
        go=decisions["go"],
        no_go=decisions["no_go"],
        not_evaluated=decisions[NOT_EVALUATED],
        stuck=sum(row.stuck for row in rows),
    )


@dataclass(frozen=True)
class FunnelStage:
    stage: str
    count: int  # projects in this stage now
    reached: int  # projects that ever got this far (retired ones included)
    conversion: float | None  # share of the previous stage's `reached` that got here; None for the first
    median_days: float | None  # median days the projects now in this stage have spent in it
    stuck: list[PortfolioRow] = field(default_factory=list)  # the longest stuck first
    # How many are stuck, when ``stuck`` names only the first few of them (the page's figures).
    stuck_count: int | None = None

    @property
    def stuck_total(self) -> int:
        return len(self.stuck) if self.stuck_count is None else self.stuck_count

    @property
    def conversion_percent(self) -> int | None:
        return round(100 * self.conversion) if self.conversion is not None else None


@dataclass(frozen=True)
class Funnel:
    stages: list[FunnelStage]
    retired: int

    @property
    def overall_percent(self) -> int | None:
        """Of the projects that started in the funnel, the share that reached production."""
        first, last = self.stages[0].reached, self.stages[-1].reached
        return round(100 * last / first) if first else None


def portfolio_funnel(rows: list[PortfolioRow]) -> Funnel:
    """Counts, conversion and time in stage along prototype → pilot → production.

    Conversion counts projects that *reached* a stage, retired ones included: an abandoned prototype is
    exactly the failure the funnel exists to show, so it must stay in the denominator."""
    stages: list[FunnelStage] = []
    previous_reached: int | None = None
    for rank, stage in enumerate(FUNNEL_STAGES):
        here = [row for row in rows if row.stage == stage]
        reached = sum(row.reached_rank >= rank for row in rows)
        conversion = None
        if previous_reached is not None:
            conversion = reached / previous_reached if previous_reached else None
        stuck = sorted((row for row in here if row.stuck), key=lambda row: -row.days_in_stage)
        stages.append(
            FunnelStage(
                stage=stage,
                count=len(here),
                reached=reached,
                conversion=conversion,
                median_days=statistics.median(row.days_in_stage for row in here) if here else None,
                stuck=stuck,
            )
        )
        previous_reached = reached
    return Funnel(stages=stages, retired=sum(row.stage == Stage.RETIRED for row in rows))


@dataclass(frozen=True)
class DimensionBlockCount:
    dimension: str
    projects: int
    share: float  # of the rows shown

    @property
    def label(self) -> str:
        return DIMENSION_LABELS[self.dimension]

    @property
    def percent(self) -> int:
        return round(100 * self.share)


@dataclass(frozen=True)
class TopBlocker:
    dimension: str | None
    key: str  # a criterion key, or the blocker status of a sign-off / prohibited blocker
    is_criterion: bool
    projects: list[PortfolioRow]
    title: str = ""
    # How many projects it blocks, when ``projects`` names only the first few (the page's figures).
    count: int | None = None

    @property
    def blocked(self) -> int:
        return len(self.projects) if self.count is None else self.count

    @property
    def dimension_label(self) -> str:
        return DIMENSION_LABELS.get(self.dimension or "", "Risk tier")

    @property
    def label(self) -> str:
        if self.is_criterion:
            return self.title or self.key.replace("_", " ").capitalize()
        return STATUS_LABELS.get(self.key, self.key)


def blocking_dimensions(rows: list[PortfolioRow]) -> list[DimensionBlockCount]:
    """Per dimension, how many projects it blocks (any blocker in it), in the fixed dimension order."""
    counts = Counter(
        dim for row in rows for dim in {key[0] for key in row.blocker_keys} if dim in DIMENSION_LABELS
    )
    total = len(rows) or 1
    return [DimensionBlockCount(dim, counts[dim], counts[dim] / total) for dim in DIMENSIONS]


def top_blockers(rows: list[PortfolioRow], limit: int = TOP_BLOCKERS) -> list[TopBlocker]:
    """The criteria (and sign-off or tier blockers) that block the most projects, most first."""
    blocked: dict[tuple[str | None, str, bool], list[PortfolioRow]] = defaultdict(list)
    for row in rows:
        for key in row.blocker_keys:
            blocked[key].append(row)
    # On a tie a criterion ranks above a sign-off: fixing it is the work, signing off follows.
    ranked = sorted(
        blocked.items(), key=lambda item: (-len(item[1]), not item[0][2], item[0][1], item[0][0] or "")
    )
    return [
        TopBlocker(dimension=dim, key=key, is_criterion=is_criterion, projects=projects)
        for (dim, key, is_criterion), projects in ranked[:limit]
    ]


def with_titles(blockers: list[TopBlocker]) -> list[TopBlocker]:
    """Criterion titles for the top blockers, in one query: the scorecards' blocker lists carry keys
    only. Projects may word one key differently; the first title alphabetically among the projects the
    page names for it stands for all (asking every blocked project would read a criterion per project
    and key: thousands of rows for a large portfolio, for one word)."""
    keys = {blocker.key for blocker in blockers if blocker.is_criterion}
    if not keys:
        return blockers
    project_ids = {row.pk for blocker in blockers for row in blocker.projects[:NAMED_PER_BLOCKER]}
    titles = dict(
        Criterion.objects.filter(project_id__in=project_ids, key__in=keys)
        .order_by()
        .values("key")
        .annotate(title=Min("title"))
        .values_list("key", "title")
    )
    return [replace(blocker, title=titles.get(blocker.key, "")) for blocker in blockers]
