"""Claiming scheduled work (health checks, pull sources) so overlapping cycles never run it twice."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TypeVar

from django.db import models

Row = TypeVar("Row", bound=models.Model)


def claim_due(rows: Iterable[Row], *, due_field: str, now: datetime) -> list[Row]:
    """Claim each row by ``UPDATE ... SET <due_field> = <next> WHERE id = X AND <due_field> = <old>``,
    which must change exactly one row: of two overlapping cycles only one moves it, the other sees
    zero rows and skips it. The due time moves before the work, so a cycle that crashes after claiming
    never stalls a row: it is simply due again one interval later.

    The cadence is kept: the next due time counts from the previous one, not from this tick, so a
    tick's lateness does not add up; after an outage it restarts from now instead of replaying every
    missed interval. Returns the rows this call claimed, their due time updated."""
    claimed: list[Row] = []
    for row in rows:
        previous: datetime = getattr(row, due_field)
        interval = timedelta(seconds=row.interval)  # type: ignore[attr-defined]
        following = previous + interval
        if following <= now:
            following = now + interval
        won = (
            type(row)
            ._default_manager.filter(pk=row.pk, **{due_field: previous})
            .update(**{due_field: following})
        )
        if won == 1:
            setattr(row, due_field, following)
            claimed.append(row)
    return claimed
