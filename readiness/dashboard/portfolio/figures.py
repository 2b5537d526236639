"""The portfolio page's figures counted in SQL: KPIs, funnel, trend and top blockers as aggregates over
the projects' stored standings (``readiness.scoring.standings``), and rows read only for what the page
names: the matrix's page, the stuck projects and the projects beside each top blocker.

So the page reads a bounded number of small rows whatever the portfolio's size (issue 14 item 7). The
figures are the ones the pure functions of ``selectors`` compute over every row (the exports' path),
which the tests hold them to.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, overload

from django.conf import settings
from django.db import connection
from django.db.models import (
    BooleanField,
    Case,
    Count,
    Exists,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Value,
    When,
    Window,
)
from django.db.models.functions import Coalesce, Collate, Lower, RowNumber

from readiness.dashboard.portfolio.selectors import (
    DIMENSIONS,
    FUNNEL_STAGES,
    NAMED_PER_BLOCKER,
    NOT_EVALUATED,
    STUCK_STAGES,
    TOP_BLOCKERS,
    DimensionBlockCount,
    Funnel,
    FunnelStage,
    PortfolioFilters,
    PortfolioKPIs,
    PortfolioRow,
    TopBlocker,
    filtered_projects,
    named_values,
    row_from,
    row_values,
)
from readiness.dashboard.portfolio.trend import TrendWeek, trend_counts
from readiness.projects.models import Project, StageChange
from readiness.projects.vocabulary import Stage
from readiness.scoring.models import BlockerTally, StandingBlocker
from readiness.scoring.standings import BlockerKey

STUCK_NAMED = 10  # stuck projects the funnel names per stage, the longest stuck first
NAMED_CANDIDATES = 200  # the first projects by name, among whom the top blockers' projects are sought


@dataclass(frozen=True)
class PortfolioFigures:
    kpis: PortfolioKPIs
    funnel: Funnel
    blocking_dimensions: list[DimensionBlockCount]
    top_blockers: list[TopBlocker]  # each with the few projects it names, and how many it blocks
    trend: list[TrendWeek]
    rows: ShownRows  # every shown project, counted; read a page (or, iterated, all) at a time


def portfolio_figures(
    *, projects: QuerySet[Project], filters: PortfolioFilters, now: datetime
) -> PortfolioFigures:
    """The page's figures for the ``projects`` the reader may see, under the ``filters``."""
    matching = filtered_projects(projects=projects, filters=filters)
    shown = matching.filter(_in_stage(filters.stage))
    tallied = _every_project(projects, filters)
    counts = _counts(matching, stage=filters.stage, now=now)
    kpis = PortfolioKPIs(
        projects=counts["shown"],
        go=counts["go"],
        no_go=counts["no_go"],
        not_evaluated=counts[NOT_EVALUATED],
        stuck=counts["stuck"],
    )
    trend = (
        trend_counts(
            shown,
            now=now,
            go_now=kpis.go,
            evaluated_now=kpis.projects - kpis.not_evaluated,
            tallied=tallied,
        )
        if kpis.projects
        else []
    )
    return PortfolioFigures(
        kpis=kpis,
        funnel=_funnel(matching, counts=counts, now=now),
        blocking_dimensions=[
            DimensionBlockCount(dim, counts[f"blocks_{dim}"], counts[f"blocks_{dim}"] / (kpis.projects or 1))
            for dim in DIMENSIONS
        ],
        top_blockers=_top_blockers(shown, now=now, tallied=tallied),
        trend=trend,
        rows=ShownRows(shown, count=kpis.projects, now=now),
    )


def _every_project(projects: QuerySet[Project], filters: PortfolioFilters) -> bool:
    """Whether the page shows every project but the retired ones: the reader may see them all (an
    admin or leadership, for whom ``visible_to`` filters nothing) and no filter narrows them. Then the
    tallies over every project, less what the retired projects hold, are the page's counts; any other
    view (a team member's, a filtered one) counts its own projects' rows."""
    query = projects.query
    return (
        not filters.active
        and not query.where
        and not query.is_sliced
        and query.combinator is None
        and not query.extra
    )


def _in_stage(stage: str) -> Q:
    """``selectors.in_stage`` as a condition: one stage, or every stage but retired."""
    return Q(stage=stage) if stage else ~Q(stage=Stage.RETIRED)


def _stuck(now: datetime) -> Q:
    """``PortfolioRow.stuck``: over READINESS_STUCK_AFTER_DAYS whole days in a stage before production."""
    since = now - timedelta(days=settings.READINESS_STUCK_AFTER_DAYS + 1)
    return Q(stage__in=STUCK_STAGES, stage_changed_at__lte=since)


def _counts(matching: QuerySet[Project], *, stage: str, now: datetime) -> Counter[str]:
    """The KPIs over the shown projects, and the funnel's counts over all matching ones (the funnel is
    about stages, so the stage filter does not narrow it), added up here from one grouped query: the
    matching projects counted by stage, stuck or not, furthest funnel stage reached, decision and
    blocked dimensions: a few dozen groups. Thirty FILTERed counts in one aggregate took 40-47 ms at
    10,000 projects, the groups take 22-30 (timed in the page's requests, the same minutes)."""
    groups = (
        matching.annotate(
            stuck=ExpressionWrapper(_stuck(now), output_field=BooleanField()), reached=_reached_rank()
        )
        .values(
            "stage",
            "stuck",
            "reached",
            decision=F("standing__decision"),  # None: no scorecard yet
            blocked=F("standing__blocked_dimensions"),
        )
        # A team member's visible projects are a DISTINCT query: each project counted once.
        .annotate(n=Count("pk", distinct=matching.query.distinct))
        .order_by()
    )
    counts: Counter[str] = Counter()
    for group in groups:
        here, n = group["stage"], group["n"]
        if here == Stage.RETIRED:
            counts["retired"] += n
        else:
            counts[f"now_{here}"] += n
            counts[f"stuck_{here}"] += n if group["stuck"] else 0
        for funnel_stage in FUNNEL_STAGES[: group["reached"] + 1]:
            counts[f"reached_{funnel_stage}"] += n
        if (here == stage) if stage else (here != Stage.RETIRED):  # shown: ``_in_stage``
            counts["shown"] += n
            counts[group["decision"] or NOT_EVALUATED] += n
            counts["stuck"] += n if group["stuck"] else 0
            # ``Standing.blocked_dimensions``: the dimensions blocking the project, space-delimited.
            for dim in (group["blocked"] or "").split():
                counts[f"blocks_{dim}"] += n
    return counts


def _reached_rank() -> Case:
    """The furthest funnel stage a project has been in, as its place in ``FUNNEL_STAGES`` (-1: none):
    its current stage, or a later one its stage history holds (a project moved back, or retired). The
    current stage counts even when the history is incomplete (an imported project). Tried from the
    furthest stage down, so the history is only searched for stages past the current one."""
    whens = []
    for rank, funnel_stage in reversed(list(enumerate(FUNNEL_STAGES))):
        whens.append(When(stage=funnel_stage, then=Value(rank)))
        changed = StageChange.objects.filter(project=OuterRef("pk"), to_stage=funnel_stage)
        whens.append(When(Exists(changed), then=Value(rank)))
    return Case(*whens, default=Value(-1), output_field=IntegerField())


def _funnel(matching: QuerySet[Project], *, counts: Counter[str], now: datetime) -> Funnel:
    entered = _entry_rows(matching, counts=counts, now=now)
    stages: list[FunnelStage] = []
    previous_reached: int | None = None
    for stage in FUNNEL_STAGES:
        here, reached = counts[f"now_{stage}"], counts[f"reached_{stage}"]
        conversion = None
        if previous_reached is not None:
            conversion = reached / previous_reached if previous_reached else None
        by_place = entered.get(stage, {})
        stuck_count = counts[f"stuck_{stage}"]
        # Days in stage only fall as the entry gets later: the middle entries have the median days,
        # and the stuck projects are the earliest entries.
        middle = sorted({(here - 1) // 2 + 1, here // 2 + 1}) if here else []
        stages.append(
            FunnelStage(
                stage=stage,
                count=here,
                reached=reached,
                conversion=conversion,
                median_days=statistics.median(by_place[p].days_in_stage for p in middle) if here else None,
                stuck=[by_place[p] for p in range(1, min(stuck_count, STUCK_NAMED) + 1)],
                stuck_count=stuck_count,
            )
        )
        previous_reached = reached
    return Funnel(stages=stages, retired=counts["retired"])


def _entry_rows(
    matching: QuerySet[Project], *, counts: Counter[str], now: datetime
) -> dict[str, dict[int, PortfolioRow]]:
    """Per funnel stage, by place in order of entry (the earliest first, from 1): the first
    ``STUCK_NAMED`` projects and the middle one or two. Ranked first, on the columns the ranking needs
    (on PostgreSQL an index holds them in this order: projects migration 0006), then only the ranked
    projects' rows read: ranking whole rows joined to their teams sorted every funnel project."""
    places = set(range(1, STUCK_NAMED + 1))
    for stage in FUNNEL_STAGES:
        here = counts[f"now_{stage}"]
        places |= {(here - 1) // 2 + 1, here // 2 + 1} if here else set()
    ranked = dict(
        matching.filter(stage__in=FUNNEL_STAGES)
        .annotate(
            place=Window(
                RowNumber(), partition_by=[F("stage")], order_by=[F("stage_changed_at").asc(), *_by_name()]
            )
        )
        .filter(place__in=places)
        .values_list("pk", "place")
    )
    entered: dict[str, dict[int, PortfolioRow]] = {}
    for values in named_values(Project.objects.filter(pk__in=ranked)):
        entered.setdefault(values["stage"], {})[ranked[values["pk"]]] = row_from(values, now=now)
    return entered


def _top_blockers(shown: QuerySet[Project], *, now: datetime, tallied: bool) -> list[TopBlocker]:
    """``selectors.top_blockers`` in SQL: the most blocking first, ties ranked alike, each naming the
    first projects it blocks by name (``NAMED_PER_BLOCKER``); from the tally when ``tallied``."""
    blockers = StandingBlocker.objects.filter(project__in=shown.values("pk"))
    if tallied:
        ranked = _tallied_blockers()
    else:
        ranked = list(
            blockers.values("dimension", "key", "is_criterion")
            .annotate(projects=Count("project"))
            # On a tie a criterion ranks above a sign-off: fixing it is the work, signing off follows.
            .order_by(
                "-projects", "-is_criterion", _sortable("key"), _sortable(Coalesce("dimension", Value("")))
            )
            .values_list("dimension", "key", "is_criterion", "projects")[:TOP_BLOCKERS]
        )
    if not ranked:
        return []
    counts = {(dimension, key, is_criterion): count for dimension, key, is_criterion, count in ranked}
    # The top blockers block many projects, so the first few projects by name almost always name them
    # all: reading their blockers spares sorting every blocked project by name per blocker.
    # Their ids are read first, in name order, so the pairs need neither a join to the projects nor a
    # sort by name: ordered here by the ids' places (sorted by name in SQL, 1,600 pairs took 8 ms).
    firsts = list(shown.order_by(*_by_name()).values_list("pk", flat=True)[:NAMED_CANDIDATES])
    by_name = {pk: place for place, pk in enumerate(firsts)}
    # ``firsts`` are shown projects already: filtering by ``shown`` again would read them all.
    # By key alone, the rest checked here: an OR of each blocker's three columns cost Django more to
    # compile than the few pairs of another blocker of the same key cost to read.
    pairs = StandingBlocker.objects.filter(
        key__in={key for _, key, _ in counts}, project_id__in=firsts
    ).values_list(*_PAIR)
    ours = [pair for pair in pairs if pair[:3] in counts]
    named = _named(sorted(ours, key=lambda pair: by_name[pair[-1]]), now=now)
    short = [key for key, count in counts.items() if len(named.get(key, [])) < min(count, NAMED_PER_BLOCKER)]
    if short:
        # A blocker of few projects, none among the first: rank its projects by name in SQL.
        ranked_by_name = blockers.filter(_any_of(short)).annotate(
            place=Window(
                RowNumber(),
                partition_by=[F("dimension"), F("key"), F("is_criterion")],
                order_by=_by_name("project__"),
            )
        )
        named |= _named(
            ranked_by_name.filter(place__lte=NAMED_PER_BLOCKER).order_by("place").values_list(*_PAIR), now=now
        )
    return [
        TopBlocker(
            dimension=dimension,
            key=key,
            is_criterion=is_criterion,
            projects=named.get((dimension, key, is_criterion), []),
            count=count,
        )
        for (dimension, key, is_criterion), count in counts.items()
    ]


def _tallied_blockers() -> list[tuple[str | None, str, bool, int]]:
    """The top blockers of every project but the retired ones: the tally over every project, less the
    retired projects' blockers, in one query of a few dozen rows and the retired ones'; ranked here
    as the query above ranks them (Python's string order is the "C" collation's)."""
    retired = (
        StandingBlocker.objects.filter(project__stage=Stage.RETIRED)
        .order_by()
        .values("dimension", "key", "is_criterion")
        .annotate(n=Count("*") * Value(-1))
        .values_list("dimension", "key", "is_criterion", "n")
    )
    counted: Counter[BlockerKey] = Counter()
    for dimension, key, is_criterion, n in BlockerTally.objects.values_list(
        "dimension", "key", "is_criterion", "projects"
    ).union(retired, all=True):
        counted[(dimension or None, key, is_criterion)] += n  # the tally keeps the risk tier as ""
    ranked = sorted(
        ((key, n) for key, n in counted.items() if n > 0),
        key=lambda item: (-item[1], not item[0][2], item[0][1], item[0][0] or ""),
    )
    return [(dimension, key, is_criterion, n) for (dimension, key, is_criterion), n in ranked[:TOP_BLOCKERS]]


def _any_of(keys: Iterable[BlockerKey]) -> Q:
    which = Q()
    for dimension, key, is_criterion in keys:
        which |= Q(dimension=dimension, key=key, is_criterion=is_criterion)
    return which


_PAIR = ("dimension", "key", "is_criterion", "project_id")  # a blocker and a project it blocks


def _named(
    pairs: Iterable[tuple[str | None, str, bool, int]], *, now: datetime
) -> dict[BlockerKey, list[PortfolioRow]]:
    """Per blocker, the projects of its first ``NAMED_PER_BLOCKER`` ``pairs`` (given in name order),
    as rows: read only for the projects named."""
    firsts: dict[BlockerKey, list[int]] = {}
    for dimension, key, is_criterion, project_id in pairs:
        named = firsts.setdefault((dimension, key, is_criterion), [])
        if len(named) < NAMED_PER_BLOCKER:
            named.append(project_id)
    projects = Project.objects.filter(pk__in={pk for pks in firsts.values() for pk in pks})
    rows = {values["pk"]: row_from(values, now=now) for values in named_values(projects)}
    return {key: [rows[pk] for pk in pks] for key, pks in firsts.items()}


def _sortable(expression: Any) -> Any:
    """Text ordered by code point, as Python orders the rows (PostgreSQL would use the locale's rules)."""
    if isinstance(expression, str):
        expression = F(expression)
    return Collate(expression, "C") if connection.vendor == "postgresql" else expression


def _by_name(prefix: str = "") -> list[Any]:
    """The matrix's order: by name regardless of case, then slug (``portfolio_rows``' order). On
    PostgreSQL an index holds this order (projects migration 0005), so a page of the matrix and the
    first projects by name are read from it instead of sorting every project."""
    return [_sortable(Lower(f"{prefix}name")), f"{prefix}slug"]


class ShownRows(Sequence[PortfolioRow]):
    """The shown projects as the matrix pages them: their number is known (the KPIs counted it), and a
    slice reads only its rows, in the matrix's order. Iterating reads them all (what a test checks)."""

    def __init__(self, shown: QuerySet[Project], *, count: int, now: datetime) -> None:
        self._ordered = shown.order_by(*_by_name())
        self._count = count
        self._now = now

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, index: int) -> PortfolioRow: ...
    @overload
    def __getitem__(self, index: slice) -> list[PortfolioRow]: ...
    def __getitem__(self, index: int | slice) -> PortfolioRow | list[PortfolioRow]:
        if isinstance(index, int):
            return self[index : index + 1][0]
        # The page's projects picked by name first, then their scorecards read: sorting every project
        # with its scorecard summary attached would serialise them all for fifty rows.
        page = Project.objects.filter(pk__in=self._ordered.values("pk")[index]).order_by(*_by_name())
        return [row_from(values, now=self._now) for values in row_values(page)]

    def __iter__(self) -> Iterator[PortfolioRow]:
        return iter(self[:])
