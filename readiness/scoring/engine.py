"""The evaluation engine: criteria and the facts about them in, one scorecard out (PRODUCT.md §1).

Pure on purpose (STYLE.md): no Django, no ORM, no clock, no I/O. Every time-dependent rule (attestation
expiry, waiver expiry) is judged against `EvaluationInput.now`, so the same input always gives the same
scorecard and every edge can be tested exhaustively and fast. Gathering the inputs is
`readiness.scoring.inputs`' job; storing the result is the services'.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from readiness.scoring.facts import (
    AttestationFact,
    CriterionSpec,
    EvaluationInput,
    Measurement,
    SignOffFact,
    WaiverFact,
)
from readiness.scoring.mltestscore import AUTOMATED_POINTS, MANUAL_POINTS, MLTestScore, ml_test_score
from readiness.scoring.results import Blocker, CriterionResult, DimensionResult, Scorecard, SignOffState
from readiness.telemetry.provenance import SOURCE_KINDS  # plain data, no Django: the engine stays pure

# The engine's whole vocabulary, importable from here: callers need not know the module split.
__all__ = [
    "AttestationFact",
    "Blocker",
    "CriterionResult",
    "CriterionSpec",
    "DimensionResult",
    "EvaluationInput",
    "MLTestScore",
    "Measurement",
    "Scorecard",
    "SignOffFact",
    "SignOffState",
    "WaiverFact",
    "default_target",
    "dimension_digest",
    "drift_status",
    "evaluate",
    "parse_window",
]

DIMENSIONS = ("data_science", "engineering", "product", "security")
STAGES = ("prototype", "pilot", "production", "retired")
TARGETS = ("pilot", "production")
RISK_TIERS = ("minimal", "limited", "high", "prohibited")
KINDS = ("metric", "drift", "attestation")
SEVERITIES = ("blocker", "advisory")
OPS = (">=", "<=")
DRIFT_METHODS = ("psi", "ks")
STATUSES = ("pass", "warn", "fail", "missing", "waived", "not_applicable")

# PRODUCT.md §1 drift defaults: PSI ≥ 0.2 is the customary "significant shift", ≥ 0.1 "moderate";
# 0.05 is the conventional significance level for the KS test.
PSI_FAIL_DEFAULT = 0.2
PSI_WARN_DEFAULT = 0.1
KS_FAIL_DEFAULT = 0.05

_DEFAULT_TARGET = {
    "prototype": "pilot",
    "pilot": "production",
    # Nothing comes after production: the question becomes "still fit for production?". A retired
    # project is held to the same bar, so reviving it never skips the production checks.
    "production": "production",
    "retired": "production",
}
_STAGE_RANK = {stage: rank for rank, stage in enumerate(STAGES)}
# Score points in units of 50 (pass/waived 100, warn 50, fail/missing 0), so the sum stays an integer.
_HALF_POINTS = {"pass": 2, "waived": 2, "warn": 1, "fail": 0, "missing": 0}
_WINDOW = re.compile(r"([1-9][0-9]{0,5})([mhd])")  # ≤ 6 digits keeps timedelta far from overflow
_WINDOW_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


# ---- public helpers ---------------------------------------------------------------------------


def parse_window(text: str) -> timedelta:
    """`15m`, `24h`, `30d` → timedelta. A whole positive number and one unit; nothing else."""
    match = _WINDOW.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(
            f"window must be a whole number followed by m, h or d (e.g. 15m, 24h, 30d); got {text!r}"
        )
    return timedelta(**{_WINDOW_UNITS[match[2]]: int(match[1])})


def default_target(stage: str) -> str:
    try:
        return _DEFAULT_TARGET[stage]
    except KeyError:
        raise ValueError(f"stage must be one of {', '.join(STAGES)}; got {stage!r}") from None


def dimension_digest(results: Sequence[CriterionResult]) -> str:
    """sha256 of the sorted `key:raw_status` of one dimension's criteria.

    Sorted so criteria order never matters; raw status so that evaluating for another target (which
    only changes applicability) never makes a sign-off stale.
    """
    dimensions = {result.dimension for result in results}
    if len(dimensions) > 1:
        raise ValueError(f"dimension_digest takes one dimension's results; got {sorted(dimensions)}")
    lines = sorted(f"{result.key}:{result.raw_status}" for result in results)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def drift_status(spec: CriterionSpec, measurement: Measurement | None) -> str:
    """The status a drift statistic alone gives under the criterion's thresholds (before severity,
    N/A and waivers): the periodic drift job re-evaluates a project only when this changes."""
    return _check_drift(spec, measurement)[0]


def evaluate(data: EvaluationInput) -> Scorecard:
    target = default_target(data.stage) if data.target is None else data.target
    _validate(data, target)
    results = [_criterion_result(spec, data, target) for spec in data.criteria]

    dimensions: dict[str, DimensionResult] = {}
    for name in DIMENSIONS:
        own = [result for result in results if result.dimension == name]
        digest = dimension_digest(own)
        dimensions[name] = DimensionResult(
            status=_dimension_status(own),
            score=_dimension_score(own),
            signoff=_signoff_state(data.signoffs.get(name), digest),
            digest=digest,
        )

    blockers = _blockers(data, target, results, dimensions)
    # Every condition of "go" (tier, dimension statuses, sign-offs) has its own kind of blocker, and a
    # dimension fails exactly when it has a blocking criterion, so "go iff no blockers" is the rule
    # itself — and it makes "no_go without a reason" impossible by construction.
    decision = "no_go" if blockers else "go"
    mlts = ml_test_score({r.key: _mlts_points(r, data.attestations.get(r.key)) for r in results})
    return Scorecard(
        project=data.project,
        target=target,
        decision=decision,
        computed_at=data.now,
        dimensions=dimensions,
        criteria=results,
        blockers=blockers,
        ml_test_score=mlts,
        digest=_scorecard_digest(target, decision, dimensions, results, blockers, mlts),
    )


# ---- one criterion ----------------------------------------------------------------------------

# What a criterion's own check found, before severity, N/A, waivers and stage: (status, reason, value).
_Check = tuple[str, str, float | None]


def _criterion_result(spec: CriterionSpec, data: EvaluationInput, target: str) -> CriterionResult:
    measurement = data.measurements.get(spec.key)
    fact = data.attestations.get(spec.key)
    threshold, warn_threshold = _limits(spec)
    if spec.kind == "metric":
        status, reason, value = _check_metric(spec, measurement)
    elif spec.kind == "drift":
        status, reason, value = _check_drift(spec, measurement)
    else:
        status, reason, value = _check_attestation(spec, fact, data.now)
    check_reason = reason

    if spec.severity == "advisory" and status == "fail":
        status, reason = "warn", f"{reason} (advisory: warns, never fails)"
    if spec.not_applicable_reason is not None:
        status, reason = "not_applicable", spec.not_applicable_reason or "marked not applicable"
    waiver = _active_waiver(data.waivers.get(spec.key, ()), data.now)
    if waiver is not None:  # last: a waiver wins over every other status, N/A included
        approved = f", approved by {waiver.approved_by}" if waiver.approved_by else ""
        status, reason = "waived", f"waived until {_when(waiver.expires_at)}{approved}; {check_reason}"

    raw_status = status
    applies = _STAGE_RANK[target] >= _STAGE_RANK[spec.stage]
    if not applies:
        status, reason = "not_applicable", f"applies from {spec.stage}; target is {target}"
    if spec.kind == "attestation":
        as_of = fact.attested_at if fact is not None else None
    else:
        as_of = measurement.as_of if measurement is not None else None
    return CriterionResult(
        key=spec.key,
        dimension=spec.dimension,
        kind=spec.kind,
        severity=spec.severity,
        title=spec.title,
        status=status,
        value=value,
        threshold=threshold,
        warn_threshold=warn_threshold,
        reason=reason,
        as_of=as_of,
        remediation=spec.remediation,
        applies=applies,
        raw_status=raw_status,
        sources=measurement.sources if spec.kind != "attestation" and measurement is not None else (),
    )


def _limits(spec: CriterionSpec) -> tuple[float | None, float | None]:
    """The effective (threshold, warn_threshold) shown with the result."""
    if spec.kind == "drift":
        return _drift_limits(spec)
    return (spec.threshold, spec.warn_threshold) if spec.kind == "metric" else (None, None)


def _drift_limits(spec: CriterionSpec) -> tuple[float, float | None]:
    if spec.method == "psi":
        return (
            PSI_FAIL_DEFAULT if spec.threshold is None else spec.threshold,
            PSI_WARN_DEFAULT if spec.warn_threshold is None else spec.warn_threshold,
        )
    # KS has no default warn band; a configured one reads like op ">=" on the p-value.
    return KS_FAIL_DEFAULT if spec.threshold is None else spec.threshold, spec.warn_threshold


def _from(spec: CriterionSpec) -> str:
    """The accepted kinds as words (" from probe or prometheus"), said of missing data so a person
    sees why points of other kinds did not count."""
    if not spec.sources:
        return ""
    kinds = list(spec.sources)
    return " from " + (kinds[0] if len(kinds) == 1 else f"{', '.join(kinds[:-1])} or {kinds[-1]}")


def _check_metric(spec: CriterionSpec, m: Measurement | None) -> _Check:
    over = f" over {spec.window}" if spec.window else ""
    agg = "latest " if spec.aggregation == "latest" else f"{spec.aggregation} of "
    what = f"{agg}{spec.metric}{over}"
    count = m.count if m is not None else 0
    if spec.threshold is None:  # misconfigured: it must never pass silently
        return "missing", f"{what} has no threshold configured", None
    if m is None or count < spec.min_samples:
        needed = _plural(spec.min_samples, "sample")
        accepted = _from(spec)
        if count == 0:
            return "missing", f"no {spec.metric} data{accepted}{over} (at least {needed} needed)", None
        return (
            "missing",
            f"only {_plural(count, 'sample')} of {spec.metric}{accepted}{over}; {needed} needed",
            None,
        )
    if m.value is None or math.isnan(m.value):  # NaN compares false both ways: it must not pass
        return "missing", m.reason or f"{what} has no value", None

    value, threshold = m.value, spec.threshold
    shown = f"{what} is {_num(value)}{' ' + m.unit if m.unit else ''}"
    # The pass line is the warn threshold when there is one; between it and the threshold lies the warn
    # band. Fail is tested first, so a warn threshold on the wrong side of the threshold only removes
    # the band and can never let a failing value pass.
    line = spec.warn_threshold if spec.warn_threshold is not None else threshold
    if spec.op == "<=":
        worse, better, failed, passed = "above", "at or below", value > threshold, value <= line
    else:
        worse, better, failed, passed = "below", "at or above", value < threshold, value >= line
    if failed:
        return "fail", f"{shown}, {worse} {_num(threshold)}", value
    if passed:
        return "pass", f"{shown}, {better} {_num(line)}", value
    return "warn", f"{shown}, {worse} the warning level {_num(line)} (fails {worse} {_num(threshold)})", value


def _check_drift(spec: CriterionSpec, m: Measurement | None) -> _Check:
    threshold, warn = _drift_limits(spec)
    over = f" over {spec.window}" if spec.window else ""
    stat = "PSI" if spec.method == "psi" else "KS p-value"
    if m is None or m.value is None or math.isnan(m.value):
        return "missing", (m.reason if m else None) or f"no drift statistic for {spec.metric} yet", None
    value = m.value
    shown = f"{stat} of {spec.metric}{over} against the reference is {_num(value)}"
    if spec.method == "psi":  # higher PSI = more drift
        if value >= threshold:
            return "fail", f"{shown}, at or above {_num(threshold)}", value
        if warn is not None and value >= warn:
            return "warn", f"{shown}, at or above the warning level {_num(warn)}", value
        return "pass", f"{shown}, below {_num(threshold if warn is None else min(warn, threshold))}", value
    # KS: a lower p-value is stronger evidence that the two distributions differ.
    if value < threshold:
        return "fail", f"{shown}, below {_num(threshold)}", value
    if warn is not None and value < warn:
        return "warn", f"{shown}, below the warning level {_num(warn)}", value
    return "pass", f"{shown}, at or above {_num(threshold if warn is None else max(warn, threshold))}", value


def _check_attestation(spec: CriterionSpec, fact: AttestationFact | None, now: datetime) -> _Check:
    if fact is None:
        return "missing", "never attested", None
    by = f"{fact.by} on {_when(fact.attested_at)}"
    if spec.evidence_required and not fact.evidence_url.strip():
        return "missing", f"attested by {by} without the required evidence link", None
    if spec.valid_for_days is not None:
        expires_at = fact.attested_at + timedelta(days=spec.valid_for_days)
        if now >= expires_at:  # valid while now < expiry: at the very instant it has expired
            cadence = f"re-attest every {_plural(spec.valid_for_days, 'day')}"
            return "missing", f"attestation by {by} expired on {_when(expires_at)} ({cadence})", None
    return "pass", f"attested by {by}{' (automated)' if fact.automated else ''}", None


def _active_waiver(waivers: Sequence[WaiverFact], now: datetime) -> WaiverFact | None:
    active = [w for w in waivers if w.status == "approved" and now < w.expires_at]
    # The longest-running one is the one to show: it is what keeps the criterion waived.
    return max(active, key=lambda w: w.expires_at, default=None)


def _mlts_points(result: CriterionResult, fact: AttestationFact | None) -> float:
    # Only a currently valid attestation earns points: raw status "pass" of an attestation criterion
    # means attested, not expired, evidence present, and neither waived nor marked N/A.
    if result.kind != "attestation" or result.raw_status != "pass" or fact is None:
        return 0.0
    return AUTOMATED_POINTS if fact.automated else MANUAL_POINTS


# ---- dimensions, blockers, digest -------------------------------------------------------------


def _dimension_status(results: Sequence[CriterionResult]) -> str:
    applicable = [r for r in results if r.applies]
    if any(r.severity == "blocker" and r.status in ("fail", "missing") for r in applicable):
        return "fail"
    # Missing never counts as pass: an advisory criterion without data does not block, but warns.
    if any(r.status == "warn" or (r.severity == "advisory" and r.status == "missing") for r in applicable):
        return "warn"
    return "pass"


def _dimension_score(results: Sequence[CriterionResult]) -> float:
    scored = [r for r in results if r.applies and r.status != "not_applicable"]
    if not scored:
        return 100.0
    # Decimal with half-up: binary floats would round 62.25 down to 62.2 (banker's/representation).
    score = Decimal(50 * sum(_HALF_POINTS[r.status] for r in scored)) / Decimal(len(scored))
    return float(score.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def _signoff_state(fact: SignOffFact | None, digest: str) -> SignOffState:
    if fact is None:
        return SignOffState("missing", None, None)
    return SignOffState("valid" if fact.digest == digest else "stale", fact.by, fact.at)


def _blockers(
    data: EvaluationInput,
    target: str,
    results: Sequence[CriterionResult],
    dimensions: Mapping[str, DimensionResult],
) -> list[Blocker]:
    blockers: list[Blocker] = []
    if data.risk_tier == "prohibited":
        blockers.append(
            Blocker(None, None, "prohibited", "risk tier is prohibited (EU AI Act): never go", None)
        )
    signoffs_required = target == "production" or data.require_signoff_for_pilot
    for name in DIMENSIONS:
        owner = data.owners.get(name)
        blockers.extend(
            Blocker(name, r.key, r.status, r.reason, owner)
            for r in results
            if r.dimension == name
            and r.applies
            and r.severity == "blocker"
            and r.status in ("fail", "missing")
        )
        signoff = dimensions[name].signoff
        if signoffs_required and signoff.state != "valid":
            if signoff.state == "missing":
                reason = f"{name} has no sign-off; required for target {target}"
            else:
                reason = (
                    f"the {name} sign-off by {signoff.by} on {_when(signoff.at)} is stale: "
                    "its criteria statuses changed since"
                )
            blockers.append(Blocker(name, None, f"signoff_{signoff.state}", reason, owner))
    return blockers


def _scorecard_digest(
    target: str,
    decision: str,
    dimensions: Mapping[str, DimensionResult],
    results: Sequence[CriterionResult],
    blockers: Sequence[Blocker],
    mlts: MLTestScore | None,
) -> str:
    # Statuses only — no values, times or reasons (reasons quote values) — so re-evaluating unchanged
    # statuses gives the same digest and no new scorecard is stored. Lists are sorted so that criteria
    # order never matters. The ML Test Score is included because a manual → automated re-attestation
    # moves it without changing any status, and its trend line should see that.
    payload = {
        "target": target,
        "decision": decision,
        "dimensions": {name: [dim.status, dim.signoff.state] for name, dim in dimensions.items()},
        "criteria": sorted([r.key, r.status] for r in results),
        "blockers": sorted([b.dimension or "", b.criterion or "", b.status, b.owner or ""] for b in blockers),
        "ml_test_score": mlts.score if mlts is not None else None,
    }
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


# ---- validation and formatting ----------------------------------------------------------------


def _validate(data: EvaluationInput, target: str) -> None:
    """Fail loudly on input outside the vocabulary: a typo must never silently pass or block."""
    _require(data.risk_tier, RISK_TIERS, "risk_tier")
    _require(target, TARGETS, "target")
    seen: set[str] = set()
    for spec in data.criteria:
        if spec.key in seen:
            raise ValueError(f"criterion key {spec.key!r} appears twice")
        seen.add(spec.key)
        where = f"criterion {spec.key!r}"
        _require(spec.dimension, DIMENSIONS, f"{where}: dimension")
        _require(spec.kind, KINDS, f"{where}: kind")
        _require(spec.severity, SEVERITIES, f"{where}: severity")
        _require(spec.stage, TARGETS, f"{where}: stage")
        for kind in spec.sources:
            _require(kind, SOURCE_KINDS, f"{where}: sources")
        if spec.kind == "metric":
            _require(spec.op, OPS, f"{where}: op")
        if spec.kind == "drift":
            _require(spec.method, DRIFT_METHODS, f"{where}: method")


def _require(value: str, allowed: Sequence[str], what: str) -> None:
    if value not in allowed:
        raise ValueError(f"{what} must be one of {', '.join(allowed)}; got {value!r}")


def _num(value: float) -> str:
    """A number as a person would write it: 412 not 412.0, 0.9995 not 0.99950000001."""
    if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
        return str(int(value))
    text = f"{value:.6g}"
    return f"{value:.1f}" if "e" in text and abs(value) >= 1 else text


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _when(moment: datetime | None) -> str:
    return moment.isoformat(timespec="minutes") if moment is not None else "an unknown time"
