"""What the portfolio reads of each project's latest scorecard, remembered per process by scorecard id.

A stored scorecard never changes (``Scorecard.save`` refuses an edit), so what was read of it once
stays true. Reading it is the costly part of the portfolio's SQL: the dimensions and blockers sit
inside a compressed (TOASTed) payload that PostgreSQL must decompress, about 17 kB a project, and a
wall screen polls the page every 30 s. So each summary is read once per process and then remembered.

Still one query per page whatever the memo holds, so the page's query count does not depend on it:
the light columns of every latest scorecard always, and the payload's parts only for the scorecards
not remembered yet (a ``CASE`` on their ids). A remembered summary is used only when the scorecard's
digest (read with the projects, so the query knows what to read) is the one remembered: a reused id
(a test database rolled back, a restored backup) never serves another scorecard's summary.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from django.db.models import Case, JSONField, Q, QuerySet, Value, When
from django.db.models.fields.json import KeyTransform

from readiness.scoring.models import Scorecard

# A few kB each: 20,000 is a large portfolio's latest scorecards many times over, in tens of MB.
MAX_ENTRIES = 20_000
# The parts of a blocker the portfolio counts by (top blockers, blocked dimensions).
BLOCKER_KEYS = ("dimension", "criterion", "status")


BlockerKey = tuple[str | None, str, bool]  # (dimension, criterion key or blocker status, is a criterion)


def blocker_keys(blockers: list[dict[str, Any]]) -> tuple[BlockerKey, ...]:
    """What a project is blocked by, each thing once: the unit the top blockers count in."""
    keys: dict[BlockerKey, None] = {}
    for blocker in blockers:
        criterion = blocker.get("criterion")
        keys[(blocker.get("dimension"), criterion or blocker.get("status") or "", criterion is not None)] = (
            None
        )
    return tuple(keys)


@dataclass(frozen=True)
class Summary:
    digest: str
    dimensions: dict[str, Any]
    blockers: list[dict[str, Any]]
    keys: tuple[BlockerKey, ...]  # blocker_keys(blockers), worked out once per scorecard


class _Memo:
    """A bounded least-recently-used map; a lock because gunicorn's threads share it."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.entries: OrderedDict[int, Summary] = OrderedDict()
        self.lock = threading.Lock()

    def get_many(self, ids: list[int]) -> dict[int, Summary]:
        with self.lock:
            found = {}
            for scorecard_id in ids:
                summary = self.entries.get(scorecard_id)
                if summary is not None:
                    self.entries.move_to_end(scorecard_id)
                    found[scorecard_id] = summary
            return found

    def put_many(self, summaries: dict[int, Summary]) -> None:
        with self.lock:
            self.entries.update(summaries)
            for scorecard_id in summaries:
                self.entries.move_to_end(scorecard_id)
            while len(self.entries) > self.size:
                self.entries.popitem(last=False)

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()


memo = _Memo(MAX_ENTRIES)


def latest_summaries(*, digests: dict[int, str], ids_query: QuerySet) -> dict[int, dict[str, Any]]:
    """Per project id: decision, target, computed_at, dimensions, blockers (and their keys) of the
    projects' latest scorecards, given as ``{scorecard id: digest}`` and as ``ids_query`` selects them
    in SQL (a subquery costs the database an index probe a project, where a list of 1,000 literal ids
    costs the client a parse)."""
    remembered = memo.get_many(list(digests))
    valid = {i: summary for i, summary in remembered.items() if summary.digest == digests[i]}
    missing = [scorecard_id for scorecard_id in digests if scorecard_id not in valid]
    # A scorecard stored since the projects query has a higher id than any it saw: read it too.
    newer = max(digests, default=0)
    read = Q(id__in=missing) | Q(id__gt=newer)
    rows = list(
        Scorecard.objects.filter(id__in=ids_query)
        .order_by()
        .annotate(dims=_read_if(read, "dimensions"), blocks=_read_if(read, "blockers"))
        .values_list("id", "project_id", "decision", "target", "computed_at", "digest", "dims", "blocks")
    )
    fresh: dict[int, Summary] = {}
    unread = []
    for scorecard_id, _, _, _, _, digest, dims, blocks in rows:
        if scorecard_id in valid:
            continue
        if scorecard_id in digests or scorecard_id > newer:
            fresh[scorecard_id] = _summary(digest, dims, blocks)
        else:
            unread.append(scorecard_id)  # committed late with a lower id: a race, read it apart
    if unread:
        for scorecard_id, digest, dims, blocks in Scorecard.objects.filter(id__in=unread).values_list(
            "id", "digest", KeyTransform("dimensions", "payload"), KeyTransform("blockers", "payload")
        ):
            fresh[scorecard_id] = _summary(digest, dims, blocks)
    latest = {}
    for scorecard_id, project_id, decision, target, computed_at, *_ in rows:
        summary = valid.get(scorecard_id) or fresh[scorecard_id]
        latest[project_id] = {
            "decision": decision,
            "target": target,
            "computed_at": computed_at,
            "dimensions": summary.dimensions,
            "blockers": summary.blockers,
            "blocker_keys": summary.keys,
        }
    memo.put_many(fresh)
    return latest


def _read_if(condition: Q, key: str) -> Case:
    # With nothing to read, the CASE has no branch: NULL for every row, and no payload decompressed.
    return Case(
        When(condition, then=KeyTransform(key, "payload")), default=Value(None), output_field=JSONField()
    )


def _summary(
    digest: str, dimensions: dict[str, Any] | None, blockers: list[dict[str, Any]] | None
) -> Summary:
    kept = [{key: blocker.get(key) for key in BLOCKER_KEYS} for blocker in blockers or []]
    return Summary(digest=digest, dimensions=dimensions or {}, blockers=kept, keys=blocker_keys(kept))
