"""Selectors that gather the evaluation engine's inputs from the database.

The engine is pure; everything it needs is read here in a bounded number of queries: one for the
criteria, one each for the newest attestations, waivers and sign-offs, one plan query per metric and a
few aggregate queries per window of it (``metric_measurements``), and one for the newest stored results
of all drift criteria. Reading never writes: drift results are computed and stored by
``readiness.scoring.drift.jobs`` (the periodic job, and the ensure step the evaluation service runs
before it calls ``evaluation_input``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from readiness.projects.models import Project
from readiness.scoring.drift.selectors import DRIFT_RESULT_MAX_AGE, drift_results_usable
from readiness.scoring.engine import (
    AttestationFact,
    EvaluationInput,
    Measurement,
    SignOffFact,
    WaiverFact,
    parse_window,
)
from readiness.scoring.models import Attestation, Criterion, Kind, SignOff, Waiver
from readiness.scoring.specs import criterion_spec
from readiness.telemetry.aggregates import window_aggregates
from readiness.telemetry.rollups.read import WindowPlan, window_plans

UNITS = {"latency_ms": "ms", "health.latency_ms": "ms"}


# What criteria must share to be answered by one read of a window: metric, labels, source kinds, window.
WindowKey = tuple[str, tuple[tuple[str, str], ...], tuple[str, ...], timedelta]


def _window_key(criterion: Criterion) -> WindowKey:
    return (
        criterion.metric,
        tuple(sorted((criterion.labels or {}).items())),
        # The kinds are alternatives (any of them), so their order does not change the window.
        tuple(sorted(criterion.sources or ())),
        parse_window(criterion.window),
    )


def metric_measurements(
    *, project_id: int, criteria: list[Criterion], now: datetime
) -> dict[str, Measurement]:
    """The measurement of each metric criterion. Criteria sharing metric, labels, sources and window
    are answered by one read of that window (``window_aggregates``), and the windows of one metric are
    planned in one query: a project's 30 criteria over three windows cost a dozen queries, not a
    hundred."""
    groups: dict[WindowKey, list[Criterion]] = {}
    for criterion in criteria:
        groups.setdefault(_window_key(criterion), []).append(criterion)
    windows_of: dict[str, list[timedelta]] = {}
    for metric, _, _, window in groups:
        if window not in windows_of.setdefault(metric, []):
            windows_of[metric].append(window)
    plans: dict[tuple[str, timedelta], WindowPlan] = {}
    for metric, windows in windows_of.items():
        planned = window_plans(
            project_id=project_id, metric=metric, windows=[(now - w, now) for w in windows], now=now
        )
        plans |= {(metric, window): plan for window, plan in zip(windows, planned, strict=True)}

    measurements: dict[str, Measurement] = {}
    for (metric, labels, kinds, window), members in groups.items():
        aggregates = window_aggregates(
            project_id=project_id,
            metric=metric,
            aggregations=[criterion.aggregation for criterion in members],
            start=now - window,
            end=now,
            labels=dict(labels),
            kinds=kinds,
            plan=plans[(metric, window)],
        )
        for criterion in members:
            agg = aggregates[criterion.aggregation]
            measurements[criterion.key] = Measurement(
                value=agg.value,
                count=agg.count,
                as_of=agg.as_of,
                unit=UNITS.get(metric, ""),
                sources=agg.sources,
            )
    return measurements


def drift_measurements(criteria: list[Criterion], now: datetime) -> dict[str, Measurement]:
    """The newest usable stored drift result of each criterion, one query for all.

    The evaluation service stores one first for any criterion that lacks it
    (``drift_results_ensure``), so a criterion without one here is read as ``missing``, never computed.
    """
    stored = drift_results_usable(criteria=criteria, now=now)
    hours = DRIFT_RESULT_MAX_AGE.total_seconds() / 3600
    return {
        criterion.key: stored[criterion.pk].measurement()
        if criterion.pk in stored
        else Measurement(
            value=None,
            count=0,
            as_of=None,
            reason=f"no drift result of {criterion.metric} computed in the last {hours:g} h",
        )
        for criterion in criteria
    }


def evaluation_input(*, project: Project, target: str | None, now: datetime) -> EvaluationInput:
    criteria = list(Criterion.objects.filter(project=project).order_by("position", "id"))
    measurements = metric_measurements(
        project_id=project.pk, criteria=[c for c in criteria if c.kind == Kind.METRIC], now=now
    )
    measurements |= drift_measurements([c for c in criteria if c.kind == Kind.DRIFT], now)

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
