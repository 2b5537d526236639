"""What the evaluation engine reads: criteria and the facts about them (plain data, no Django)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class CriterionSpec:
    key: str
    dimension: str
    kind: str  # "metric" | "drift" | "attestation"
    title: str = ""
    severity: str = "blocker"  # or "advisory"
    stage: str = "pilot"  # the lowest target stage it applies at: "pilot" | "production"
    remediation: str = ""
    metric: str = ""
    aggregation: str = "latest"
    window: str = ""
    op: str = ">="
    threshold: float | None = None
    warn_threshold: float | None = None
    min_samples: int = 1
    sources: tuple[str, ...] = ()  # metric and drift: the source kinds accepted; empty accepts all
    method: str = "psi"  # drift: "psi" | "ks"
    evidence_required: bool = False
    valid_for_days: int | None = None
    not_applicable_reason: str | None = None  # explicitly marked N/A when not None


@dataclass(frozen=True)
class Measurement:  # the aggregate of a metric criterion's window, or a drift statistic (PSI or KS p)
    value: float | None
    count: int
    as_of: datetime | None
    reason: str | None = None  # why value is None, e.g. "only 12 reference samples"
    unit: str = ""  # display unit, e.g. "ms"
    sources: tuple[str, ...] = ()  # the distinct sources of the points used, e.g. ("probe:api",)


@dataclass(frozen=True)
class AttestationFact:  # the newest attestation of a criterion
    attested_at: datetime
    by: str
    automated: bool
    evidence_url: str = ""


@dataclass(frozen=True)
class WaiverFact:
    status: str  # "pending" | "approved" | "rejected"
    expires_at: datetime
    approved_by: str | None = None


@dataclass(frozen=True)
class SignOffFact:  # the newest sign-off of a dimension
    by: str
    at: datetime
    digest: str  # dimension_digest(...) at the moment it was given


@dataclass(frozen=True)
class EvaluationInput:
    project: str
    risk_tier: str
    stage: str
    target: str | None  # None → default_target(stage)
    criteria: Sequence[CriterionSpec]
    measurements: Mapping[str, Measurement]  # by criterion key (metric and drift kinds)
    attestations: Mapping[str, AttestationFact]  # by criterion key
    waivers: Mapping[str, Sequence[WaiverFact]]  # by criterion key
    signoffs: Mapping[str, SignOffFact]  # by dimension
    owners: Mapping[str, str | None]  # dimension → username
    now: datetime
    require_signoff_for_pilot: bool = False
