"""Which events an evaluation produces (PRODUCT.md §4 "Notifications"), judged on the JSON of two
consecutive stored scorecards, and how expiry events read. Pure: plain data in, event specs out.

- decision changed: the decisions of the two scorecards differ. A project's first scorecard has
  nothing before it, so it changes nothing (and produces no event at all).
- blocker regressed to fail: an applicable blocker criterion that is ``fail`` now and was not on the
  previous scorecard (a criterion that was not on it is new, not a regression).
- data gone missing: an applicable metric or drift criterion that is ``missing`` now, for lack of data,
  and was not on the previous scorecard.
- expiring: an attestation or an approved waiver whose end falls within the next 7 days.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

# How far ahead an expiry is announced: a week leaves a review cycle to re-attest or renew.
EXPIRY_HORIZON = timedelta(days=7)

DECISION_CHANGED = "decision_changed"
CRITERION_REGRESSED = "criterion_regressed"
EXPIRING = "expiring"
DATA_MISSING = "data_missing"


@dataclass(frozen=True)
class EventSpec:
    kind: str
    key: str  # unique per project: what makes two findings the same event
    summary: str  # one human sentence
    criterion: str = ""
    dimension: str = ""
    owner: str = ""
    details: dict[str, Any] = field(default_factory=dict)


def decision_label(decision: str | None) -> str:
    return {"go": "GO", "no_go": "NO-GO"}.get(decision or "", "none")


def evaluation_events(
    *,
    previous: Mapping[str, Any] | None,
    current: Mapping[str, Any],
    scorecard_id: int,
    owners: Mapping[str, str | None],
) -> list[EventSpec]:
    """The events between the previous stored scorecard's JSON and the new one's."""
    if previous is None:
        return []
    events: list[EventSpec] = []
    old, new = previous.get("decision"), current.get("decision")
    if old != new:
        events.append(
            EventSpec(
                kind=DECISION_CHANGED,
                key=f"decision:{scorecard_id}",
                summary=f"decision changed from {decision_label(old)} to {decision_label(new)}",
                details={"old": old, "new": new},
            )
        )
    before = {item["key"]: item for item in previous.get("criteria", [])}
    for result in current.get("criteria", []):
        prior = before.get(result["key"])
        if prior is None or not result.get("applies", True):
            continue
        name = f"{result['dimension']}/{result['key']}"
        common = {
            "criterion": result["key"],
            "dimension": result["dimension"],
            "owner": owners.get(result["dimension"]) or "",
            "details": {
                "old_status": prior["status"],
                "new_status": result["status"],
                "value": result.get("value"),
                "reason": result.get("reason", ""),
            },
        }
        if _regressed(prior, result):
            events.append(
                EventSpec(
                    kind=CRITERION_REGRESSED,
                    key=f"regressed:{scorecard_id}:{result['key']}",
                    summary=f"{name} regressed to fail (was {prior['status']}): {result.get('reason', '')}",
                    **common,
                )
            )
        elif _went_missing(prior, result):
            events.append(
                EventSpec(
                    kind=DATA_MISSING,
                    key=f"missing:{scorecard_id}:{result['key']}",
                    summary=f"{name} has no data (was {prior['status']}): {result.get('reason', '')}",
                    **common,
                )
            )
    return events


def _regressed(prior: Mapping[str, Any], result: Mapping[str, Any]) -> bool:
    return result["severity"] == "blocker" and result["status"] == "fail" and prior["status"] != "fail"


def _went_missing(prior: Mapping[str, Any], result: Mapping[str, Any]) -> bool:
    if result["kind"] not in ("metric", "drift") or result["status"] != "missing":
        return False
    # A metric criterion without a threshold is missing because it is misconfigured, not for lack of
    # data: that is the criterion editor's business, not a data pipeline gone quiet.
    if result["kind"] == "metric" and result.get("threshold") is None:
        return False
    return prior["status"] != "missing"


def is_expiring(expires_at: datetime, now: datetime) -> bool:
    """Within the horizon and not yet over: ``now < expires_at <= now + 7 days``. An attestation or
    waiver is over at the very instant it ends (the engine's rule), so that instant is not "expiring"."""
    return now < expires_at <= now + EXPIRY_HORIZON


def _when(moment: datetime) -> str:
    return moment.isoformat(timespec="minutes")


def _in(expires_at: datetime, now: datetime) -> str:
    left = expires_at - now
    if left >= timedelta(days=1):
        days = left.days
        return f"in {days} day{'s' if days != 1 else ''}"
    hours = int(left.total_seconds() // 3600)
    return f"in {hours} hour{'s' if hours != 1 else ''}" if hours else "within the hour"


def attestation_expiring(
    *,
    attestation_id: int,
    criterion: str,
    dimension: str,
    owner: str | None,
    by: str,
    expires_at: datetime,
    now: datetime,
) -> EventSpec:
    return EventSpec(
        kind=EXPIRING,
        key=f"attestation_expiring:{attestation_id}",
        summary=(
            f"the attestation of {dimension}/{criterion} by {by} expires on {_when(expires_at)} "
            f"({_in(expires_at, now)}); re-attest before then"
        ),
        criterion=criterion,
        dimension=dimension,
        owner=owner or "",
        details={"what": "attestation", "id": attestation_id, "expires_at": expires_at.isoformat()},
    )


def waiver_expiring(
    *,
    waiver_id: int,
    criterion: str,
    dimension: str,
    owner: str | None,
    expires_at: datetime,
    now: datetime,
) -> EventSpec:
    return EventSpec(
        kind=EXPIRING,
        key=f"waiver_expiring:{waiver_id}",
        summary=(
            f"the waiver of {dimension}/{criterion} expires on {_when(expires_at)} "
            f"({_in(expires_at, now)}); fix the criterion or renew the waiver before then"
        ),
        criterion=criterion,
        dimension=dimension,
        owner=owner or "",
        details={"what": "waiver", "id": waiver_id, "expires_at": expires_at.isoformat()},
    )
