"""Selectors that gather the evaluation engine's inputs from the database.

The engine is pure; everything it needs is read here in a bounded number of queries: one for the
criteria, one each for the newest attestations, waivers and sign-offs, and one aggregate query per
metric or drift criterion.
"""

from __future__ import annotations

from datetime import datetime

from readiness.projects.models import Project
from readiness.scoring.drift import ks_pvalue, psi
from readiness.scoring.engine import (
    AttestationFact,
    CriterionSpec,
    EvaluationInput,
    Measurement,
    SignOffFact,
    WaiverFact,
    parse_window,
)
from readiness.scoring.models import Attestation, Criterion, Kind, SignOff, Waiver
from readiness.telemetry.aggregates import window_aggregate, window_values

# PSI bins the reference on its deciles, and KS needs a sample on both sides to mean anything:
# below this many points on either side the drift result is `missing`, not a guess.
DRIFT_MIN_SAMPLES = 10
UNITS = {"latency_ms": "ms", "health.latency_ms": "ms"}


def criterion_spec(criterion: Criterion) -> CriterionSpec:
    return CriterionSpec(
        key=criterion.key,
        dimension=criterion.dimension,
        kind=criterion.kind,
        title=criterion.title,
        severity=criterion.severity,
        stage=criterion.stage,
        remediation=criterion.remediation,
        metric=criterion.metric,
        aggregation=criterion.aggregation or "latest",
        window=criterion.window,
        op=criterion.op or ">=",
        threshold=criterion.threshold,
        warn_threshold=criterion.warn_threshold,
        min_samples=criterion.min_samples,
        method=criterion.method or "psi",
        evidence_required=criterion.evidence_required,
        valid_for_days=criterion.valid_for_days,
        not_applicable_reason=criterion.not_applicable_reason,
    )


def metric_measurement(criterion: Criterion, now: datetime) -> Measurement:
    agg = window_aggregate(
        project_id=criterion.project_id,
        metric=criterion.metric,
        aggregation=criterion.aggregation,
        start=now - parse_window(criterion.window),
        end=now,
        labels=criterion.labels,
    )
    return Measurement(
        value=agg.value, count=agg.count, as_of=agg.as_of, unit=UNITS.get(criterion.metric, "")
    )


def drift_measurement(criterion: Criterion, now: datetime) -> Measurement:
    """PSI or the KS p-value of the current window against the reference period."""
    assert criterion.reference_start is not None and criterion.reference_end is not None
    reference = window_values(
        project_id=criterion.project_id,
        metric=criterion.metric,
        start=criterion.reference_start,
        end=criterion.reference_end,
        labels=criterion.labels,
    )
    current = window_values(
        project_id=criterion.project_id,
        metric=criterion.metric,
        start=now - parse_window(criterion.window),
        end=now,
        labels=criterion.labels,
    )
    needed = max(DRIFT_MIN_SAMPLES, criterion.min_samples)
    count = int(min(len(reference), len(current)))
    if len(reference) < needed or len(current) < needed:
        return Measurement(
            value=None,
            count=count,
            as_of=None,
            reason=(
                f"drift of {criterion.metric} needs {needed} samples on each side; "
                f"reference has {len(reference)}, current window has {len(current)}"
            ),
        )
    value = psi(reference, current) if criterion.method == "psi" else ks_pvalue(reference, current)
    return Measurement(value=value, count=count, as_of=now)


def evaluation_input(*, project: Project, target: str | None, now: datetime) -> EvaluationInput:
    criteria = list(Criterion.objects.filter(project=project).order_by("position", "id"))
    measurements: dict[str, Measurement] = {}
    for criterion in criteria:
        if criterion.kind == Kind.METRIC:
            measurements[criterion.key] = metric_measurement(criterion, now)
        elif criterion.kind == Kind.DRIFT:
            measurements[criterion.key] = drift_measurement(criterion, now)

    keys = {c.pk: c.key for c in criteria}
    attestations: dict[str, AttestationFact] = {}
    # Newest first: the first seen per criterion is the one that counts.
    for att in (
        Attestation.objects.filter(criterion__project=project, attested_at__lte=now)
        .select_related("attested_by", "token")
        .order_by("-attested_at", "-id")
    ):
        key = keys.get(att.criterion_id)
        if key is not None and key not in attestations:
            attestations[key] = AttestationFact(
                attested_at=att.attested_at,
                by=att.by,
                automated=att.automated,
                evidence_url=att.evidence_url,
            )

    waivers: dict[str, list[WaiverFact]] = {}
    for waiver in (
        Waiver.objects.filter(criterion__project=project, expires_at__gt=now)
        .select_related("approved_by")
        .order_by("-requested_at")
    ):
        waivers.setdefault(keys[waiver.criterion_id], []).append(
            WaiverFact(
                status=waiver.status,
                expires_at=waiver.expires_at,
                approved_by=waiver.approved_by.get_username() if waiver.approved_by else None,
            )
        )

    signoffs: dict[str, SignOffFact] = {}
    for signoff in (
        SignOff.objects.filter(project=project, signed_at__lte=now)
        .select_related("signed_by")
        .order_by("-signed_at", "-id")
    ):
        if signoff.dimension not in signoffs:
            signoffs[signoff.dimension] = SignOffFact(
                by=signoff.signed_by.get_username(), at=signoff.signed_at, digest=signoff.digest
            )

    return EvaluationInput(
        project=project.slug,
        risk_tier=project.risk_tier,
        stage=project.stage,
        target=target,
        criteria=[criterion_spec(c) for c in criteria],
        measurements=measurements,
        attestations=attestations,
        waivers=waivers,
        signoffs=signoffs,
        owners=project.owner_usernames(),
        now=now,
        require_signoff_for_pilot=project.require_signoff_for_pilot,
    )
