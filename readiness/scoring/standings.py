"""Where each project stands: what the portfolio shows of it, kept up to date as scorecards are stored.

A portfolio of thousands of projects cannot afford to look up each project's latest scorecard, let
alone its latest scorecard as of each of the trend's weeks (issue 14 item 7). So storing a scorecard
also writes, in the same transaction (``Scorecard.save``):

- the project's ``Standing``: its latest scorecard, with that scorecard's decision and time;
- its ``StandingBlocker`` rows: what blocks it now, each thing once (``blocker_keys``), so the top
  blockers are one ``GROUP BY``;
- its ``WeeklyDecision`` rows: the decision of its latest scorecard as of the end of each week, from the
  week of its first scorecard to the week of its latest, so the readiness trend is one ``GROUP BY``;
- the tallies over every project (``BlockerTally``, ``WeeklyTally``): how many projects each thing
  blocks, and how many projects had each decision at the end of each week. At 10,000 projects the two
  groupings above read ~100,000 rows each; the unfiltered portfolio (the one leadership opens)
  reads a few dozen tally rows instead, less what its retired projects hold (``figures``).

The tallies move by the difference a write makes (nothing when a re-evaluation changes nothing), in
one statement per tally table, rows in key order: two transactions that each store one scorecard lock
tally rows in the same order, so they may wait for each other but cannot deadlock.

``readiness.scoring.models`` imports these models at its top (so the app registry knows them under the
``scoring`` label); this module imports nothing of that one, and reads scorecards through the model of
the scorecard it is given (or the migration's historical model).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from itertools import groupby
from typing import Any

from django.db import connection, models
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


class BlockerTally(models.Model):
    """How many projects one thing blocks now, over every project (their ``StandingBlocker`` rows)."""

    # "" for the risk tier, where StandingBlocker has None: a unique key treats NULLs as all different.
    dimension = models.CharField(max_length=16, blank=True)
    key = models.CharField(max_length=80)
    is_criterion = models.BooleanField()
    projects = models.IntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["dimension", "key", "is_criterion"], name="blocker_tally_once")
        ]

    def __str__(self) -> str:
        return f"{self.dimension or 'risk tier'}/{self.key} blocks {self.projects} projects"


class WeeklyTally(models.Model):
    """How many projects had ``decision`` at the end of ``week``, over every project (``WeeklyDecision``)."""

    week = models.DateField()
    decision = models.CharField(max_length=8)
    projects = models.IntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["week", "decision"], name="weekly_tally_once")]

    def __str__(self) -> str:
        return f"{self.projects} projects {self.decision} in the week of {self.week}"


BlockerCounts = Counter[BlockerKey]
WeekCounts = Counter[tuple[date, str]]


def tallies_move(*, blockers: Mapping[BlockerKey, int], weeks: Mapping[tuple[date, str], int]) -> None:
    """Add ``blockers`` and ``weeks`` (differences, negative ones included) to the tallies."""
    _upsert(
        "scoring_blockertally",
        ("dimension", "key", "is_criterion"),
        [((dimension or "", key, is_criterion), n) for (dimension, key, is_criterion), n in blockers.items()],
    )
    _upsert("scoring_weeklytally", ("week", "decision"), list(weeks.items()))


def _upsert(table: str, key_columns: tuple[str, ...], moves: list[tuple[tuple[Any, ...], int]]) -> None:
    # In key order, so concurrent writers take the rows' locks in one order (no deadlock); a move of
    # nothing writes nothing, so a re-evaluation that changes nothing waits on no one.
    rows = sorted((key, n) for key, n in moves if n)
    if not rows:
        return
    columns = ", ".join((*key_columns, "projects"))
    placeholders = ", ".join(["(" + ", ".join(["%s"] * (len(key_columns) + 1)) + ")"] * len(rows))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({columns}) VALUES {placeholders} "  # noqa: S608 -- our own names
            f"ON CONFLICT ({', '.join(key_columns)}) "
            f"DO UPDATE SET projects = {table}.projects + EXCLUDED.projects",
            [value for key, n in rows for value in (*key, n)],
        )


def tallies_rebuild(*, blocker_tally: Any, weekly_tally: Any, blocker: Any, weekly: Any) -> None:
    """Recount the tallies from every project's blockers and weekly decisions (the migration that adds
    them, and a check that the moves kept them right)."""
    blocker_tally.objects.all().delete()
    weekly_tally.objects.all().delete()
    blocker_tally.objects.bulk_create(
        blocker_tally(dimension=dimension or "", key=key, is_criterion=is_criterion, projects=n)
        for dimension, key, is_criterion, n in blocker.objects.order_by()
        .values("dimension", "key", "is_criterion")
        .annotate(n=models.Count("*"))
        .values_list("dimension", "key", "is_criterion", "n")
    )
    weekly_tally.objects.bulk_create(
        weekly_tally(week=week, decision=decision, projects=n)
        for week, decision, n in weekly.objects.order_by()
        .values("week", "decision")
        .annotate(n=models.Count("*"))
        .values_list("week", "decision", "n")
    )


def tallies_forget(*, project_id: int) -> None:
    """Take a project out of the tallies: called as it is deleted, before its rows go with it."""
    tallies_move(
        blockers=Counter(
            {
                (dimension, key, is_criterion): -1
                for dimension, key, is_criterion in StandingBlocker.objects.filter(
                    project_id=project_id
                ).values_list("dimension", "key", "is_criterion")
            }
        ),
        weeks=Counter(
            {
                (week, decision): -1
                for week, decision in WeeklyDecision.objects.filter(project_id=project_id).values_list(
                    "week", "decision"
                )
            }
        ),
    )


def project_deleted_receiver(sender: type[models.Model], instance: Any, **kwargs: Any) -> None:
    tallies_forget(project_id=instance.pk)


# --- Writing -------------------------------------------------------------------------------------


def standing_follow(scorecard: Any) -> None:
    """Bring the project's standing, blockers and weekly decisions up to date with a scorecard just
    stored. Called by ``Scorecard.save`` inside its transaction; the scorecard may be older than the
    project's latest (a backfilled history), and then only the weeks it changes are rewritten."""
    project_id = scorecard.project_id
    # Locked, so two scorecards of one project stored at once cannot both take the standing (the first
    # one of a project is serialised by the project's row lock that ``scorecard_refresh`` holds).
    standing = Standing.objects.select_for_update().filter(project_id=project_id).first()
    blockers: BlockerCounts = Counter()
    if standing is None or (scorecard.computed_at, scorecard.pk) > (
        standing.computed_at,
        standing.scorecard_id,
    ):
        blockers = _stand(project_id=project_id, scorecard=scorecard)
    weeks = _weeks_follow(
        type(scorecard), project_id=project_id, since=week_start(week_of(scorecard.computed_at))
    )
    tallies_move(blockers=blockers, weeks=weeks)


def _stand(*, project_id: int, scorecard: Any) -> BlockerCounts:
    """Make ``scorecard`` the project's standing; returns how its blockers move the tally."""
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
    held = set(
        StandingBlocker.objects.filter(project_id=project_id).values_list("dimension", "key", "is_criterion")
    )
    if held == set(keys):
        return Counter()
    StandingBlocker.objects.filter(project_id=project_id).delete()
    StandingBlocker.objects.bulk_create(
        StandingBlocker(project_id=project_id, dimension=dim, key=key, is_criterion=is_criterion)
        for dim, key, is_criterion in keys
    )
    return _moves(Counter(keys), Counter(held))


def _weeks_follow(scorecards: type[models.Model], *, project_id: int, since: datetime) -> WeekCounts:
    """Rewrite the weeks from the latest scorecard before ``since`` (whose week ends as it did, but the
    weeks after it may now end differently) to the latest scorecard: a handful of rows a day. Returns
    how the rewritten weeks move the tally."""
    ordered = scorecards.objects.filter(project_id=project_id).order_by("computed_at", "id")  # type: ignore[attr-defined]
    before = ordered.filter(computed_at__lt=since).values_list("computed_at", "decision").last()
    history = [
        *([before] if before else []),
        *ordered.filter(computed_at__gte=since).values_list("computed_at", "decision"),
    ]
    rows = weekly_decisions(history)
    if not rows:
        return Counter()
    written = WeeklyDecision.objects.filter(
        project_id=project_id, week__gte=rows[0][0], week__lte=rows[-1][0]
    )
    held = list(written.values_list("week", "decision"))
    if sorted(held) == rows:
        return Counter()
    written.delete()
    WeeklyDecision.objects.bulk_create(
        WeeklyDecision(project_id=project_id, week=week, decision=decision) for week, decision in rows
    )
    return _moves(Counter(rows), Counter(held))


# --- Rebuilding (the backfill migration, and bench data written with COPY) -----------------------


@dataclass(frozen=True)
class StandingModels:
    """The models a rebuild writes through: the app's own, or a migration's historical ones."""

    scorecard: Any
    standing: Any
    blocker: Any
    weekly: Any
    # The tallies move with the rows, once they exist (the migration that adds them counts them itself).
    tallied: bool = False


def current_models() -> StandingModels:
    from django.apps import apps

    return StandingModels(
        scorecard=apps.get_model("scoring", "Scorecard"),
        standing=Standing,
        blocker=StandingBlocker,
        weekly=WeeklyDecision,
        tallied=True,
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
    if store.tallied:
        tallies_move(
            blockers=_moves(
                Counter((b.dimension, b.key, b.is_criterion) for b in blockers),
                _counted_rows(store.blocker, ids, "dimension", "key", "is_criterion"),
            ),
            weeks=_moves(
                Counter((w.week, w.decision) for w in weeks),
                _counted_rows(store.weekly, ids, "week", "decision"),
            ),
        )
    for model in (store.standing, store.blocker, store.weekly):
        model.objects.filter(project_id__in=ids).delete()
    store.standing.objects.bulk_create(standings, batch_size=2_000)
    store.blocker.objects.bulk_create(blockers, batch_size=2_000)
    store.weekly.objects.bulk_create(weeks, batch_size=2_000)


def _moves(after: Counter[Any], before: Counter[Any]) -> Counter[Any]:
    """``after - before`` with the negative differences kept (``Counter``'s ``-`` drops them)."""
    moves = Counter(after)
    moves.subtract(before)
    return moves


def _counted_rows(model: Any, ids: list[int], *fields: str) -> Counter[Any]:
    """The rows of the projects ``ids`` before a rebuild replaces them, counted per tally key."""
    rows = model.objects.filter(project_id__in=ids).order_by().values(*fields).annotate(n=models.Count("*"))
    return Counter({tuple(row[field] for field in fields): row["n"] for row in rows})
