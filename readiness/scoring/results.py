"""What the evaluation engine writes: a scorecard of criterion and dimension results, decision and
blockers, with the JSON of PRODUCT.md §3 "Scorecard JSON"."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from readiness.scoring.mltestscore import MLTestScore

_CRITERION_JSON_FIELDS = (
    *("key", "dimension", "kind", "severity", "status", "value", "threshold", "warn_threshold"),
    *("reason", "as_of", "title", "remediation", "applies"),
)


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


@dataclass(frozen=True)
class CriterionResult:
    key: str
    dimension: str
    kind: str
    severity: str
    title: str
    status: str
    value: float | None
    threshold: float | None
    warn_threshold: float | None
    reason: str
    as_of: datetime | None
    remediation: str
    applies: bool  # False when the criterion starts at a later stage than the target
    raw_status: str  # the status ignoring stage applicability: sign-off digests must not vary by target
    # The distinct sources of the points its value used ("probe:api", ...); () for attestations.
    sources: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        # PRODUCT.md §3 fields, then title/remediation/applies for pages; raw_status stays internal.
        data = {name: getattr(self, name) for name in _CRITERION_JSON_FIELDS}
        for name in ("value", "threshold", "warn_threshold"):  # a threshold of 300 is still 300.0
            data[name] = float(data[name]) if data[name] is not None else None
        return data | {"as_of": iso(self.as_of), "sources": list(self.sources)}


@dataclass(frozen=True)
class SignOffState:
    state: str  # "valid" | "stale" | "missing"
    by: str | None
    at: datetime | None


@dataclass(frozen=True)
class DimensionResult:
    status: str
    score: float
    signoff: SignOffState
    digest: str  # what a sign-off given now binds to

    def to_json(self) -> dict[str, Any]:
        signoff = {"state": self.signoff.state, "by": self.signoff.by, "at": iso(self.signoff.at)}
        return {"status": self.status, "score": self.score, "signoff": signoff}


@dataclass(frozen=True)
class Blocker:
    dimension: str | None
    criterion: str | None
    status: str  # a criterion status, "signoff_missing", "signoff_stale" or "prohibited"
    reason: str
    owner: str | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Scorecard:
    project: str
    target: str
    decision: str  # "go" | "no_go"
    computed_at: datetime
    dimensions: dict[str, DimensionResult]  # in DIMENSIONS order
    criteria: list[CriterionResult]
    blockers: list[Blocker]
    ml_test_score: MLTestScore | None
    digest: str

    def to_json(self) -> dict[str, Any]:
        """The "Scorecard JSON" of PRODUCT.md §3 (the digest is stored beside it, not inside)."""
        return {
            "project": self.project,
            "target": self.target,
            "decision": self.decision,
            "computed_at": iso(self.computed_at),
            "dimensions": {name: dim.to_json() for name, dim in self.dimensions.items()},
            "criteria": [result.to_json() for result in self.criteria],
            "blockers": [blocker.to_json() for blocker in self.blockers],
            "ml_test_score": self.ml_test_score.to_json() if self.ml_test_score else None,
        }
