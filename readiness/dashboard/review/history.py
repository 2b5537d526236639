"""Reads behind the history page: a project's stored scorecards, newest first, each with what changed
since the one before it (decision, criterion statuses, sign-offs, dimension scores).

Everything is computed from the stored payloads (the PRODUCT.md §3 JSON), never by re-evaluating: the
history says what the project looked like *then*. A page costs two queries whatever its length: the
count for the pager, and the page's scorecards plus the one just before the oldest of them, so the
oldest entry on a page has its diff too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from readiness.dashboard.common.display import (
    DECISION_LABELS,
    DIMENSION_LABELS,
    SIGNOFF_LABELS,
    STATUS_LABELS,
    ShowsDecision,
    format_number,
    parse_time,
    status_symbol,
)
from readiness.dashboard.common.paging import offset, pick_page
from readiness.projects.models import Project
from readiness.projects.vocabulary import Dimension
from readiness.scoring.models import Scorecard

PER_PAGE = 20
ABSENT = "absent"  # a criterion that did not exist on one side of a diff
MINUS = "\u2212"  # the typographic minus sign: a score delta reads as a number, not a dash


@dataclass(frozen=True)
class StatusChange:
    """One criterion's status, from the older scorecard to the newer one."""

    key: str
    title: str
    dimension: str
    before: str  # a status, or ABSENT when the criterion is new
    after: str  # a status, or ABSENT when the criterion was removed

    @property
    def dimension_label(self) -> str:
        return DIMENSION_LABELS.get(self.dimension, self.dimension)

    @property
    def before_label(self) -> str:
        return _status_label(self.before, "New")

    @property
    def after_label(self) -> str:
        return _status_label(self.after, "Removed")

    @property
    def before_symbol(self) -> str:
        return status_symbol(self.before)

    @property
    def after_symbol(self) -> str:
        return status_symbol(self.after)

    @property
    def is_regression(self) -> bool:
        return _STATUS_RANK.get(self.after, 0) > _STATUS_RANK.get(self.before, 0)


@dataclass(frozen=True)
class SignOffChange:
    """A dimension's sign-off was ``given``, became ``stale``, or went ``missing``."""

    dimension: str
    change: str  # "given" | "stale" | "missing"
    before: str  # the sign-off state before
    by: str | None
    at: datetime | None

    @property
    def dimension_label(self) -> str:
        return DIMENSION_LABELS.get(self.dimension, self.dimension)

    @property
    def before_label(self) -> str:
        return SIGNOFF_LABELS.get(self.before, self.before)

    @property
    def sentence(self) -> str:
        if self.change == "given":
            return "signed off"
        if self.change == "stale":
            return "sign-off went stale: a status in the dimension changed since it was given"
        return "sign-off missing"


@dataclass(frozen=True)
class DimensionChange:
    dimension: str
    status_before: str
    status_after: str
    score_before: float | None
    score_after: float | None

    @property
    def label(self) -> str:
        return DIMENSION_LABELS.get(self.dimension, self.dimension)

    @property
    def status_changed(self) -> bool:
        return self.status_before != self.status_after

    @property
    def before_label(self) -> str:
        return _status_label(self.status_before, "None")

    @property
    def after_label(self) -> str:
        return _status_label(self.status_after, "None")

    @property
    def delta(self) -> float | None:
        if self.score_before is None or self.score_after is None:
            return None
        return round(self.score_after - self.score_before, 1)

    @property
    def delta_label(self) -> str:
        delta = self.delta
        if not delta:
            return ""
        sign = "+" if delta > 0 else MINUS
        return f"{sign}{format_number(abs(delta))}"


@dataclass(frozen=True)
class ScorecardChanges:
    decision_before: str
    decision_after: str
    target_before: str
    target_after: str
    criteria: list[StatusChange]
    signoffs: list[SignOffChange]
    dimensions: list[DimensionChange]

    @property
    def decision_changed(self) -> bool:
        return self.decision_before != self.decision_after

    @property
    def target_changed(self) -> bool:
        return self.target_before != self.target_after

    @property
    def decision_before_label(self) -> str:
        return DECISION_LABELS.get(self.decision_before, self.decision_before)

    @property
    def nothing_changed(self) -> bool:
        return not (
            self.decision_changed or self.target_changed or self.criteria or self.signoffs or self.dimensions
        )


@dataclass(frozen=True)
class HistoryEntry(ShowsDecision):
    id: int
    computed_at: datetime
    decision: str
    target: str
    blockers: int
    changes: ScorecardChanges | None  # None: the project's first stored scorecard

    @property
    def is_quiet(self) -> bool:
        """A daily snapshot: stored because a day passed, not because anything changed."""
        return self.changes is not None and self.changes.nothing_changed


@dataclass(frozen=True)
class QuietRun:
    """Consecutive daily snapshots with nothing changed, shown as one line (newest first)."""

    entries: list[HistoryEntry]

    @property
    def newest(self) -> HistoryEntry:
        return self.entries[0]

    @property
    def oldest(self) -> HistoryEntry:
        return self.entries[-1]


@dataclass(frozen=True)
class HistoryPage:
    entries: list[HistoryEntry]
    number: int
    num_pages: int
    total: int
    message: str  # why the requested page was not shown as asked; "" when it was

    @property
    def blocks(self) -> list[HistoryEntry | QuietRun]:
        """The entries as the page lists them: two or more quiet entries in a row fold into one run,
        so what changed is not lost between days on which nothing did."""
        blocks: list[HistoryEntry | QuietRun] = []
        run: list[HistoryEntry] = []
        for entry in [*self.entries, None]:
            if entry is not None and entry.is_quiet:
                run.append(entry)
                continue
            if len(run) > 1:
                blocks.append(QuietRun(run))
            else:
                blocks.extend(run)
            run = []
            if entry is not None:
                blocks.append(entry)
        return blocks

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.num_pages

    @property
    def previous_number(self) -> int:
        return self.number - 1

    @property
    def next_number(self) -> int:
        return self.number + 1


# Worse statuses rank higher: a change up this scale is a regression.
_STATUS_RANK = {
    ABSENT: 0,
    "not_applicable": 0,
    "pass": 1,
    "waived": 1,
    "warn": 2,
    "missing": 3,
    "fail": 3,
}


def _status_label(status: str, absent: str) -> str:
    return absent if status == ABSENT else STATUS_LABELS.get(status, status)


def history_page(*, project: Project, page: str | None) -> HistoryPage:
    """One page of the project's scorecard history. ``page`` is the raw query parameter: anything that
    is not a page number shows the nearest page and says so, never an error."""
    scorecards = Scorecard.objects.latest_for(project)
    shown, message = pick_page(scorecards, per_page=PER_PAGE, raw=page)
    start = offset(shown)
    # One more than the page holds: the scorecard just before the page's oldest, to diff it against.
    rows = list(
        scorecards.values("id", "computed_at", "decision", "target", "payload")[start : start + PER_PAGE + 1]
    )
    entries = []
    for index, row in enumerate(rows[:PER_PAGE]):
        older = rows[index + 1] if index + 1 < len(rows) else None
        entries.append(
            HistoryEntry(
                id=row["id"],
                computed_at=row["computed_at"],
                decision=row["decision"],
                target=row["target"],
                blockers=len(row["payload"].get("blockers") or []),
                changes=scorecard_changes(before=older["payload"], after=row["payload"]) if older else None,
            )
        )
    paginator = shown.paginator
    return HistoryPage(
        entries=entries,
        number=shown.number,
        num_pages=paginator.num_pages,
        total=paginator.count,
        message=message,
    )


# --- Diffs (pure) ---------------------------------------------------------------------------------


def scorecard_changes(*, before: dict[str, Any], after: dict[str, Any]) -> ScorecardChanges:
    """What changed from the ``before`` payload to the ``after`` one (both PRODUCT.md §3 JSON)."""
    return ScorecardChanges(
        decision_before=before.get("decision") or "",
        decision_after=after.get("decision") or "",
        target_before=before.get("target") or "",
        target_after=after.get("target") or "",
        criteria=criterion_changes(before.get("criteria") or [], after.get("criteria") or []),
        signoffs=signoff_changes(before.get("dimensions") or {}, after.get("dimensions") or {}),
        dimensions=dimension_changes(before.get("dimensions") or {}, after.get("dimensions") or {}),
    )


def criterion_changes(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> list[StatusChange]:
    """Criteria whose status differs, in the newer scorecard's order, then the removed ones."""
    old = {result["key"]: result for result in before}
    new_keys = {result["key"] for result in after}
    changes = []
    for result in after:
        previous = old.get(result["key"])
        status_before = previous["status"] if previous else ABSENT
        if status_before != result["status"]:
            changes.append(_status_change(result, status_before, result["status"]))
    for result in before:
        if result["key"] not in new_keys:
            changes.append(_status_change(result, result["status"], ABSENT))
    return changes


def _status_change(result: dict[str, Any], before: str, after: str) -> StatusChange:
    return StatusChange(
        key=result["key"],
        title=result.get("title") or result["key"],
        dimension=result.get("dimension") or "",
        before=before,
        after=after,
    )


def signoff_changes(before: dict[str, Any], after: dict[str, Any]) -> list[SignOffChange]:
    """Per dimension: a sign-off given (a new one, even over an older valid one), gone stale, or gone
    missing. A stale sign-off that stays stale is no change."""
    changes = []
    for dim in Dimension.values:
        old = (before.get(dim) or {}).get("signoff") or {}
        new = (after.get(dim) or {}).get("signoff") or {}
        old_state, new_state = old.get("state") or "missing", new.get("state") or "missing"
        resigned = (old.get("by"), old.get("at")) != (new.get("by"), new.get("at"))
        if new_state == "valid" and (old_state != "valid" or resigned):
            change = "given"
        elif new_state != old_state and new_state in ("stale", "missing"):
            change = new_state
        else:
            continue
        changes.append(
            SignOffChange(
                dimension=dim, change=change, before=old_state, by=new.get("by"), at=parse_time(new.get("at"))
            )
        )
    return changes


def dimension_changes(before: dict[str, Any], after: dict[str, Any]) -> list[DimensionChange]:
    """Dimensions whose status or score differs, in the fixed dimension order."""
    changes = []
    for dim in Dimension.values:
        old, new = before.get(dim) or {}, after.get(dim) or {}
        if (old.get("status"), old.get("score")) == (new.get("status"), new.get("score")):
            continue
        changes.append(
            DimensionChange(
                dimension=dim,
                status_before=old.get("status") or ABSENT,
                status_after=new.get("status") or ABSENT,
                score_before=old.get("score"),
                score_after=new.get("score"),
            )
        )
    return changes
