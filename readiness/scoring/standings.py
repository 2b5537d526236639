"""Where each project stands: what the portfolio shows of it, kept up to date as scorecards are stored.

A portfolio of thousands of projects cannot afford to look up each project's latest scorecard, let
alone its latest scorecard as of each of the trend's weeks (issue 14 item 7). So storing a scorecard
also writes, in the same transaction (``Scorecard.save``):

- the project's ``Standing``: its latest scorecard, with that scorecard's decision and time;
- its ``StandingBlocker`` rows: what blocks it now, each thing once (``blocker_keys``), so the top
  blockers are one ``GROUP BY``;
- its ``WeeklyDecision`` rows: the decision of its latest scorecard as of the end of each week, from the
  week of its first scorecard to the week of its latest, so the readiness trend is one ``GROUP BY``.

``readiness.scoring.models`` imports these models at its top (so the app registry knows them under the
``scoring`` label); this module imports nothing of that one, and reads scorecards through the model of
the scorecard it is given (or the migration's historical model).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from itertools import groupby
from typing import Any

from django.db import models
from django.utils import timezone

from readiness.projects.vocabulary import Dimension

BlockerKey = tuple[str | None, str, bool]  # (dimension, criterion key or blocker status, is a criterion)
WEEK = timedelta(weeks=1)
REBUILD_BATCH = 500


def blocker_keys(blockers: Iterable[dict[str, Any]]) -> tuple[BlockerKey, ...]:
    """What a project is blocked by, each thing once: the unit the top blockers count in."""
    keys: dict[BlockerKey, None] = {}
    for blocker in blockers:
        criterion = blocker.get("criterion")
        keys[(blocker.get("dimension"), criterion or blocker.get("status") or "", criterion is not None)] = (
            None
        )
    return tuple(keys)


def dimensions_text(keys: Iterable[BlockerKey]) -> str:
    """``Standing.blocked_dimensions`` of a project blocked by ``keys``."""
    dimensions = sorted({dimension for dimension, _, _ in keys if dimension})
    return f" {' '.join(dimensions)} " if dimensions else ""


def week_of(at: datetime) -> date:
    """The Monday (in TIME_ZONE) that starts the week ``at`` falls in: the trend's weeks."""
    day = timezone.localtime(at).date()
    return day - timedelta(days=day.weekday())


def week_start(week: date) -> datetime:
    """The first instant of the week that starts on the Monday ``week``, aware, in TIME_ZONE."""
    return timezone.make_aware(datetime.combine(week, time.min))


def weekly_decisions(history: Sequence[tuple[datetime, str]]) -> list[tuple[date, str]]:
    """Per week from the first scorecard's to the last one's, the decision of the latest scorecard as of
    the week's end. ``history`` is (computed_at, decision) oldest first, as the scorecards are ordered."""
    last_in_week: dict[date, str] = {}
    for at, decision in history:
        last_in_week[week_of(at)] = decision  # the latest of the week wins
    if not last_in_week:
        return []
    week, last = min(last_in_week), max(last_in_week)
    rows: list[tuple[date, str]] = []
    decision = last_in_week[week]
    while week <= last:
        decision = last_in_week.get(week, decision)  # a week without a scorecard keeps the one before
        rows.append((week, decision))
        week += WEEK
    return rows


class Standing(models.Model):
    """A project's latest scorecard and what the portfolio counts of it. A project without a scorecard
    has no standing: "not evaluated"."""

    project = models.OneToOneField(
        "projects.Project", primary_key=True, on_delete=models.CASCADE, related_name="standing"
    )
    scorecard = models.ForeignKey("scoring.Scorecard", on_delete=models.CASCADE, related_name="+")
    decision = models.CharField(max_length=8)
    computed_at = models.DateTimeField()
    # week_of(computed_at): from this week on (until the next scorecard) the trend counts ``decision``.
    week = models.DateField()
    # The dimensions its blockers are in, each between spaces (" product security "): the portfolio
    # counts the projects each dimension blocks with a LIKE on its standings, where counting distinct
    # projects over every blocker row would read thousands of rows a dimension.
    blocked_dimensions = models.CharField(max_length=100, blank=True, default="")

    def __str__(self) -> str:
        return f"project {self.project_id}: {self.decision} since {self.computed_at:%Y-%m-%d %H:%M}"


class StandingBlocker(models.Model):
    """One thing that blocks a project now (its latest scorecard's blockers, each once)."""

    project = models.ForeignKey(
        "projects.Project", on_delete=models.CASCADE, related_name="standing_blockers"
    )
    dimension = models.CharField(max_length=16, choices=Dimension.choices, null=True)  # None: the risk tier
    key = models.CharField(max_length=80)  # a criterion key, or the status of a sign-off / tier blocker
    is_criterion = models.BooleanField()

    class Meta:
        indexes = [models.Index(fields=["dimension", "key", "is_criterion"], name="standing_blocker_key")]

    def __str__(self) -> str:
        return f"project {self.project_id} blocked by {self.dimension}/{self.key}"


class WeeklyDecision(models.Model):
    """The decision of a project's latest scorecard as of the end of one week (``weekly_decisions``)."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="weekly_decisions")
    week = models.DateField()  # its Monday, in TIME_ZONE
    decision = models.CharField(max_length=8)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "week"], name="weekly_decision_once")]
        # The trend reads a dozen weeks of every project: by week first.
        indexes = [
            models.Index(fields=["week", "project"], include=["decision"], name="weekly_decision_week")
        ]

    def __str__(self) -> str:
        return f"project {self.project_id} {self.decision} in the week of {self.week}"


# --- Writing -------------------------------------------------------------------------------------


def standing_follow(scorecard: Any) -> None:
    """Bring the project's standing, blockers and weekly decisions up to date with a scorecard just
    stored. Called by ``Scorecard.save`` inside its transaction; the scorecard may be older than the
    project's latest (a backfilled history), and then only the weeks it changes are rewritten."""
    project_id = scorecard.project_id
    # Locked, so two scorecards of one project stored at once cannot both take the standing (the first
    # one of a project is serialised by the project's row lock that ``scorecard_refresh`` holds).
    standing = Standing.objects.select_for_update().filter(project_id=project_id).first()
    if standing is None or (scorecard.computed_at, scorecard.pk) > (
        standing.computed_at,
        standing.scorecard_id,
    ):
        _stand(project_id=project_id, scorecard=scorecard)
    _weeks_follow(type(scorecard), project_id=project_id, since=week_start(week_of(scorecard.computed_at)))


def _stand(*, project_id: int, scorecard: Any) -> None:
    keys = blocker_keys(scorecard.summary.get("blockers") or [])
    Standing.objects.update_or_create(
        project_id=project_id,
        defaults={
            "scorecard_id": scorecard.pk,
            "decision": scorecard.decision,
            "computed_at": scorecard.computed_at,
            "week": week_of(scorecard.computed_at),
            "blocked_dimensions": dimensions_text(keys),
        },
    )
    StandingBlocker.objects.filter(project_id=project_id).delete()
    StandingBlocker.objects.bulk_create(
        StandingBlocker(project_id=project_id, dimension=dim, key=key, is_criterion=is_criterion)
        for dim, key, is_criterion in keys
    )


def _weeks_follow(scorecards: type[models.Model], *, project_id: int, since: datetime) -> None:
    """Rewrite the weeks from the latest scorecard before ``since`` (whose week ends as it did, but the
    weeks after it may now end differently) to the latest scorecard: a handful of rows a day."""
    ordered = scorecards.objects.filter(project_id=project_id).order_by("computed_at", "id")  # type: ignore[attr-defined]
    before = ordered.filter(computed_at__lt=since).values_list("computed_at", "decision").last()
    history = [
        *([before] if before else []),
        *ordered.filter(computed_at__gte=since).values_list("computed_at", "decision"),
    ]
    rows = weekly_decisions(history)
    if not rows:
        return
    WeeklyDecision.objects.filter(project_id=project_id, week__gte=rows[0][0], week__lte=rows[-1][0]).delete()
    WeeklyDecision.objects.bulk_create(
        WeeklyDecision(project_id=project_id, week=week, decision=decision) for week, decision in rows
    )


# --- Rebuilding (the backfill migration, and bench data written with COPY) -----------------------


@dataclass(frozen=True)
class StandingModels:
    """The models a rebuild writes through: the app's own, or a migration's historical ones."""

    scorecard: Any
    standing: Any
    blocker: Any
    weekly: Any


def current_models() -> StandingModels:
    from django.apps import apps

    return StandingModels(
        scorecard=apps.get_model("scoring", "Scorecard"),
        standing=Standing,
        blocker=StandingBlocker,
        weekly=WeeklyDecision,
    )


def standings_rebuild(*, store: StandingModels, project_ids: Iterable[int] | None = None) -> int:
    """Rewrite the standing, blockers and weekly decisions of the projects (all that have scorecards by
    default) from their stored scorecards, a batch of projects at a time; returns the projects done."""
    scorecards = store.scorecard.objects
    if project_ids is None:
        project_ids = scorecards.order_by("project_id").values_list("project_id", flat=True).distinct()
    ids = sorted(set(project_ids))
    for start in range(0, len(ids), REBUILD_BATCH):
        _rebuild_batch(store, ids[start : start + REBUILD_BATCH])
    return len(ids)


def _rebuild_batch(store: StandingModels, ids: list[int]) -> None:
    history = (
        store.scorecard.objects.filter(project_id__in=ids)
        .order_by("project_id", "computed_at", "id")
        .values_list("project_id", "id", "computed_at", "decision")
    )
    standings, weeks = [], []
    for project_id, rows in groupby(history.iterator(chunk_size=10_000), key=lambda row: row[0]):
        ordered = list(rows)
        _, latest_id, at, decision = ordered[-1]
        standings.append(
            store.standing(
                project_id=project_id,
                scorecard_id=latest_id,
                decision=decision,
                computed_at=at,
                week=week_of(at),
            )
        )
        weeks += [
            store.weekly(project_id=project_id, week=week, decision=decision)
            for week, decision in weekly_decisions([(at, decision) for _, _, at, decision in ordered])
        ]
    summaries = dict(
        store.scorecard.objects.filter(id__in=[s.scorecard_id for s in standings]).values_list(
            "project_id", "summary"
        )
    )
    blockers = []
    for standing in standings:
        keys = blocker_keys((summaries.get(standing.project_id) or {}).get("blockers") or [])
        standing.blocked_dimensions = dimensions_text(keys)
        blockers += [
            store.blocker(project_id=standing.project_id, dimension=dim, key=key, is_criterion=is_criterion)
            for dim, key, is_criterion in keys
        ]
    for model in (store.standing, store.blocker, store.weekly):
        model.objects.filter(project_id__in=ids).delete()
    store.standing.objects.bulk_create(standings, batch_size=2_000)
    store.blocker.objects.bulk_create(blockers, batch_size=2_000)
    store.weekly.objects.bulk_create(weeks, batch_size=2_000)
