"""The evaluation engine's rules (PRODUCT.md §1), each at its edges. Pure: no Django, no database."""

from __future__ import annotations

import ast
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from readiness.scoring import engine
from readiness.scoring.engine import (
    DIMENSIONS,
    AttestationFact,
    Blocker,
    CriterionResult,
    CriterionSpec,
    EvaluationInput,
    Measurement,
    Scorecard,
    SignOffFact,
    WaiverFact,
    default_target,
    dimension_digest,
    evaluate,
    parse_window,
)

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
OWNERS: Mapping[str, str | None] = {
    "data_science": "alice",
    "engineering": "bob",
    "product": "carol",
    "security": "dave",
}
US = timedelta(microseconds=1)


# ---- builders (also used by the other engine test modules) ------------------------------------


def metric(key: str = "latency_p99", **fields: object) -> CriterionSpec:
    defaults: dict[str, object] = {
        "dimension": "engineering",
        "kind": "metric",
        "metric": "latency_ms",
        "aggregation": "p99",
        "window": "24h",
        "op": "<=",
        "threshold": 300.0,
    }
    return CriterionSpec(key=key, **(defaults | fields))  # type: ignore[arg-type]


def drift(key: str = "score_drift", **fields: object) -> CriterionSpec:
    defaults: dict[str, object] = {
        "dimension": "data_science",
        "kind": "drift",
        "metric": "score",
        "window": "7d",
        "method": "psi",
    }
    return CriterionSpec(key=key, **(defaults | fields))  # type: ignore[arg-type]


def attestation(key: str = "threat_model", **fields: object) -> CriterionSpec:
    defaults: dict[str, object] = {"dimension": "security", "kind": "attestation"}
    return CriterionSpec(key=key, **(defaults | fields))  # type: ignore[arg-type]


def measured(value: float | None, count: int = 100, **fields: object) -> Measurement:
    return Measurement(value=value, count=count, as_of=NOW - timedelta(minutes=1), **fields)  # type: ignore[arg-type]


def attested(
    at: datetime = NOW - timedelta(days=1),
    by: str = "dave",
    automated: bool = False,
    evidence_url: str = "https://wiki.example/evidence",
) -> AttestationFact:
    return AttestationFact(attested_at=at, by=by, automated=automated, evidence_url=evidence_url)


def approved(expires_at: datetime = NOW + timedelta(days=30), status: str = "approved") -> WaiverFact:
    return WaiverFact(status=status, expires_at=expires_at, approved_by="bob")


def make_input(
    criteria: Sequence[CriterionSpec] = (),
    *,
    measurements: Mapping[str, Measurement] | None = None,
    attestations: Mapping[str, AttestationFact] | None = None,
    waivers: Mapping[str, Sequence[WaiverFact]] | None = None,
    signoffs: Mapping[str, SignOffFact] | None = None,
    owners: Mapping[str, str | None] = OWNERS,
    stage: str = "prototype",
    target: str | None = None,
    risk_tier: str = "high",
    now: datetime = NOW,
    require_signoff_for_pilot: bool = False,
) -> EvaluationInput:
    return EvaluationInput(
        project="fraud-detector",
        risk_tier=risk_tier,
        stage=stage,
        target=target,
        criteria=list(criteria),
        measurements=measurements or {},
        attestations=attestations or {},
        waivers=waivers or {},
        signoffs=signoffs or {},
        owners=owners,
        now=now,
        require_signoff_for_pilot=require_signoff_for_pilot,
    )


def result_of(spec: CriterionSpec, **inputs: object) -> CriterionResult:
    """The result of a single criterion evaluated alone."""
    return evaluate(make_input([spec], **inputs)).criteria[0]  # type: ignore[arg-type]


def with_signoffs(data: EvaluationInput, dimensions: Sequence[str] = DIMENSIONS) -> EvaluationInput:
    """The same input with a sign-off bound to the current results of each given dimension."""
    current = evaluate(data)
    signoffs = dict(data.signoffs) | {
        name: SignOffFact(
            by=OWNERS[name] or "", at=NOW - timedelta(hours=1), digest=current.dimensions[name].digest
        )
        for name in dimensions
    }
    return replace(data, signoffs=signoffs)


def passing_everywhere() -> EvaluationInput:
    """One passing blocker attestation per dimension, for production, signed off."""
    criteria = [attestation(f"{name}_ok", dimension=name) for name in DIMENSIONS]
    facts = {spec.key: attested() for spec in criteria}
    return with_signoffs(make_input(criteria, attestations=facts, stage="pilot"))


# ---- metric: thresholds at their edges --------------------------------------------------------


def test_metric_lte_equal_to_threshold_passes() -> None:
    assert result_of(metric(), measurements={"latency_p99": measured(300.0)}).status == "pass"


def test_metric_gte_equal_to_threshold_passes() -> None:
    spec = metric("accuracy", op=">=", threshold=0.9)
    assert result_of(spec, measurements={"accuracy": measured(0.9)}).status == "pass"


def test_metric_lte_just_over_threshold_fails() -> None:
    value = math.nextafter(300.0, math.inf)
    assert result_of(metric(), measurements={"latency_p99": measured(value)}).status == "fail"


def test_metric_gte_just_under_threshold_fails() -> None:
    spec = metric("accuracy", op=">=", threshold=0.9)
    value = math.nextafter(0.9, -math.inf)
    assert result_of(spec, measurements={"accuracy": measured(value)}).status == "fail"


def test_metric_lte_equal_to_warn_threshold_passes() -> None:
    spec = metric(warn_threshold=250.0)
    assert result_of(spec, measurements={"latency_p99": measured(250.0)}).status == "pass"


def test_metric_lte_just_over_warn_threshold_warns() -> None:
    spec = metric(warn_threshold=250.0)
    value = math.nextafter(250.0, math.inf)
    assert result_of(spec, measurements={"latency_p99": measured(value)}).status == "warn"


def test_metric_lte_equal_to_threshold_inside_warn_band_warns() -> None:
    spec = metric(warn_threshold=250.0)
    assert result_of(spec, measurements={"latency_p99": measured(300.0)}).status == "warn"


def test_metric_lte_just_over_threshold_with_warn_band_fails() -> None:
    spec = metric(warn_threshold=250.0)
    value = math.nextafter(300.0, math.inf)
    assert result_of(spec, measurements={"latency_p99": measured(value)}).status == "fail"


def test_metric_gte_equal_to_warn_threshold_passes() -> None:
    spec = metric("availability", op=">=", threshold=0.999, warn_threshold=0.9995)
    assert result_of(spec, measurements={"availability": measured(0.9995)}).status == "pass"


def test_metric_gte_just_under_warn_threshold_warns() -> None:
    spec = metric("availability", op=">=", threshold=0.999, warn_threshold=0.9995)
    value = math.nextafter(0.9995, -math.inf)
    assert result_of(spec, measurements={"availability": measured(value)}).status == "warn"


def test_metric_gte_equal_to_threshold_inside_warn_band_warns() -> None:
    spec = metric("availability", op=">=", threshold=0.999, warn_threshold=0.9995)
    assert result_of(spec, measurements={"availability": measured(0.999)}).status == "warn"


def test_metric_gte_just_under_threshold_with_warn_band_fails() -> None:
    spec = metric("availability", op=">=", threshold=0.999, warn_threshold=0.9995)
    value = math.nextafter(0.999, -math.inf)
    assert result_of(spec, measurements={"availability": measured(value)}).status == "fail"


def test_metric_warn_threshold_on_wrong_side_never_lets_a_failing_value_pass() -> None:
    spec = metric(warn_threshold=400.0)  # misconfigured: looser than the threshold
    assert result_of(spec, measurements={"latency_p99": measured(350.0)}).status == "fail"
    assert result_of(spec, measurements={"latency_p99": measured(300.0)}).status == "pass"


# ---- metric: not enough data ------------------------------------------------------------------


def test_metric_count_equal_to_min_samples_is_evaluated() -> None:
    spec = metric(min_samples=5)
    assert result_of(spec, measurements={"latency_p99": measured(100.0, count=5)}).status == "pass"


def test_metric_count_one_below_min_samples_is_missing() -> None:
    spec = metric(min_samples=5)
    result = result_of(spec, measurements={"latency_p99": measured(100.0, count=4)})
    assert result.status == "missing"
    assert result.value is None
    assert "4 samples" in result.reason and "5 samples" in result.reason and "24h" in result.reason


def test_metric_with_no_data_in_window_is_missing() -> None:
    result = result_of(metric(), measurements={"latency_p99": measured(None, count=0)})
    assert result.status == "missing"
    assert result.reason == "no latency_ms data over 24h (at least 1 sample needed)"


def test_metric_without_measurement_is_missing() -> None:
    assert result_of(metric()).status == "missing"


def test_metric_with_none_value_is_missing() -> None:
    result = result_of(metric(), measurements={"latency_p99": measured(None, count=3)})
    assert result.status == "missing"


def test_metric_nan_value_is_missing() -> None:
    result = result_of(metric(), measurements={"latency_p99": measured(math.nan)})
    assert result.status == "missing"


def test_metric_without_threshold_is_missing() -> None:
    result = result_of(metric(threshold=None), measurements={"latency_p99": measured(1.0)})
    assert result.status == "missing"
    assert "no threshold" in result.reason


# ---- metric: what the result says -------------------------------------------------------------


def test_metric_fail_reason_names_aggregation_metric_window_value_unit_and_threshold() -> None:
    result = result_of(metric(warn_threshold=250.0), measurements={"latency_p99": measured(412.0, unit="ms")})
    assert result.reason == "p99 of latency_ms over 24h is 412 ms, above 300"


def test_metric_warn_reason_names_the_warning_level() -> None:
    result = result_of(metric(warn_threshold=250.0), measurements={"latency_p99": measured(280.0)})
    assert result.reason == "p99 of latency_ms over 24h is 280, above the warning level 250 (fails above 300)"


def test_metric_latest_reason_reads_naturally() -> None:
    spec = metric("accuracy", aggregation="latest", metric="accuracy", window="30d", op=">=", threshold=0.9)
    result = result_of(spec, measurements={"accuracy": measured(0.931)})
    assert result.reason == "latest accuracy over 30d is 0.931, at or above 0.9"


def test_metric_result_carries_value_thresholds_and_as_of() -> None:
    result = result_of(metric(warn_threshold=250.0), measurements={"latency_p99": measured(120.0)})
    assert (result.value, result.threshold, result.warn_threshold) == (120.0, 300.0, 250.0)
    assert result.as_of == NOW - timedelta(minutes=1)


# ---- drift ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("psi", "status"),
    [
        (0.2, "fail"),
        (math.nextafter(0.2, 0.0), "warn"),
        (0.1, "warn"),
        (math.nextafter(0.1, 0.0), "pass"),
        (0.0, "pass"),
    ],
)
def test_psi_bands_use_default_thresholds(psi: float, status: str) -> None:
    assert result_of(drift(), measurements={"score_drift": measured(psi)}).status == status


def test_psi_result_shows_default_thresholds() -> None:
    result = result_of(drift(), measurements={"score_drift": measured(0.05)})
    assert (result.threshold, result.warn_threshold) == (0.2, 0.1)


def test_psi_custom_thresholds_replace_defaults() -> None:
    spec = drift(threshold=0.3, warn_threshold=0.25)
    assert result_of(spec, measurements={"score_drift": measured(0.2)}).status == "pass"
    assert result_of(spec, measurements={"score_drift": measured(0.25)}).status == "warn"
    assert result_of(spec, measurements={"score_drift": measured(0.3)}).status == "fail"


def test_psi_fail_reason_names_the_statistic_and_threshold() -> None:
    result = result_of(drift(), measurements={"score_drift": measured(0.31)})
    assert result.reason == "PSI of score over 7d against the reference is 0.31, at or above 0.2"


@pytest.mark.parametrize(
    ("pvalue", "status"),
    [(math.nextafter(0.05, 0.0), "fail"), (0.05, "pass"), (0.5, "pass"), (0.0, "fail")],
)
def test_ks_fails_when_pvalue_below_default_threshold(pvalue: float, status: str) -> None:
    spec = drift(method="ks")
    assert result_of(spec, measurements={"score_drift": measured(pvalue)}).status == status


def test_ks_has_no_default_warn_band() -> None:
    result = result_of(drift(method="ks"), measurements={"score_drift": measured(0.06)})
    assert (result.status, result.threshold, result.warn_threshold) == ("pass", 0.05, None)


def test_ks_with_warn_threshold_warns_inside_band() -> None:
    spec = drift(method="ks", warn_threshold=0.1)
    assert result_of(spec, measurements={"score_drift": measured(0.07)}).status == "warn"
    assert result_of(spec, measurements={"score_drift": measured(0.1)}).status == "pass"


def test_drift_without_value_is_missing_with_measurement_reason() -> None:
    reason = "drift of score needs 10 samples on each side; reference has 3, current window has 40"
    result = result_of(drift(), measurements={"score_drift": measured(None, count=3, reason=reason)})
    assert (result.status, result.reason) == ("missing", reason)


def test_drift_without_measurement_is_missing() -> None:
    assert result_of(drift()).status == "missing"


# ---- attestation ------------------------------------------------------------------------------


def test_never_attested_is_missing() -> None:
    result = result_of(attestation())
    assert (result.status, result.reason) == ("missing", "never attested")


def test_attestation_passes_and_reports_its_time() -> None:
    fact = attested()
    result = result_of(attestation(), attestations={"threat_model": fact})
    assert result.status == "pass"
    assert result.as_of == fact.attested_at
    assert "dave" in result.reason


def test_attestation_one_microsecond_before_expiry_is_valid() -> None:
    fact = attested(at=NOW - timedelta(days=90) + US)
    result = result_of(attestation(valid_for_days=90), attestations={"threat_model": fact})
    assert result.status == "pass"


def test_attestation_exactly_at_expiry_is_missing_expired() -> None:
    fact = attested(at=NOW - timedelta(days=90))
    result = result_of(attestation(valid_for_days=90), attestations={"threat_model": fact})
    assert result.status == "missing"
    assert "expired" in result.reason


def test_attestation_without_cadence_never_expires() -> None:
    fact = attested(at=NOW - timedelta(days=3650))
    assert result_of(attestation(), attestations={"threat_model": fact}).status == "pass"


@pytest.mark.parametrize("url", ["", "   "])
def test_evidence_required_without_link_is_missing(url: str) -> None:
    fact = attested(evidence_url=url)
    result = result_of(attestation(evidence_required=True), attestations={"threat_model": fact})
    assert result.status == "missing"
    assert "evidence" in result.reason


def test_evidence_required_with_link_passes() -> None:
    fact = attested(evidence_url="https://wiki.example/threat-model")
    result = result_of(attestation(evidence_required=True), attestations={"threat_model": fact})
    assert result.status == "pass"


def test_evidence_not_required_passes_without_link() -> None:
    fact = attested(evidence_url="")
    assert result_of(attestation(), attestations={"threat_model": fact}).status == "pass"


# ---- advisory ---------------------------------------------------------------------------------


def test_advisory_metric_that_would_fail_warns() -> None:
    result = result_of(metric(severity="advisory"), measurements={"latency_p99": measured(999.0)})
    assert result.status == "warn"
    assert "advisory" in result.reason


def test_advisory_drift_that_would_fail_warns() -> None:
    result = result_of(drift(severity="advisory"), measurements={"score_drift": measured(0.5)})
    assert result.status == "warn"


def test_advisory_missing_stays_missing() -> None:
    assert result_of(attestation(severity="advisory")).status == "missing"


def test_advisory_missing_makes_dimension_warn_but_does_not_block() -> None:
    card = evaluate(make_input([attestation(severity="advisory")]))
    assert card.dimensions["security"].status == "warn"
    assert card.blockers == []
    assert card.decision == "go"


def test_advisory_failing_metric_never_blocks() -> None:
    card = evaluate(make_input([metric(severity="advisory")], measurements={"latency_p99": measured(999.0)}))
    assert card.dimensions["engineering"].status == "warn"
    assert card.decision == "go"


# ---- waivers ----------------------------------------------------------------------------------


def test_approved_waiver_wins_over_fail() -> None:
    result = result_of(
        metric(), measurements={"latency_p99": measured(999.0)}, waivers={"latency_p99": [approved()]}
    )
    assert result.status == "waived"
    assert result.value == 999.0


def test_approved_waiver_wins_over_missing() -> None:
    assert result_of(attestation(), waivers={"threat_model": [approved()]}).status == "waived"


def test_approved_waiver_wins_over_not_applicable() -> None:
    spec = attestation(not_applicable_reason="no personal data")
    assert result_of(spec, waivers={"threat_model": [approved()]}).status == "waived"


def test_waiver_one_microsecond_before_expiry_waives() -> None:
    result = result_of(attestation(), waivers={"threat_model": [approved(expires_at=NOW + US)]})
    assert result.status == "waived"


def test_waiver_exactly_at_expiry_no_longer_waives() -> None:
    result = result_of(attestation(), waivers={"threat_model": [approved(expires_at=NOW)]})
    assert result.status == "missing"


@pytest.mark.parametrize("status", ["pending", "rejected"])
def test_unapproved_waiver_does_not_waive(status: str) -> None:
    result = result_of(attestation(), waivers={"threat_model": [approved(status=status)]})
    assert result.status == "missing"


def test_any_active_approved_waiver_among_several_waives() -> None:
    waivers = [approved(status="rejected"), approved(expires_at=NOW - US), approved()]
    assert result_of(attestation(), waivers={"threat_model": waivers}).status == "waived"


def test_waived_reason_names_expiry_approver_and_underlying_check() -> None:
    result = result_of(
        attestation(), waivers={"threat_model": [approved(expires_at=NOW + timedelta(days=3))]}
    )
    assert result.reason == "waived until 2026-11-25T12:00+00:00, approved by bob; never attested"


def test_waived_blocker_does_not_block() -> None:
    card = evaluate(make_input([attestation()], waivers={"threat_model": [approved()]}))
    assert card.dimensions["security"].status == "pass"
    assert card.decision == "go"


# ---- not applicable ---------------------------------------------------------------------------


def test_marked_not_applicable_has_its_reason() -> None:
    result = result_of(attestation(not_applicable_reason="no personal data is processed"))
    assert (result.status, result.reason) == ("not_applicable", "no personal data is processed")


def test_empty_not_applicable_reason_still_marks_not_applicable() -> None:
    assert result_of(attestation(not_applicable_reason="")).status == "not_applicable"


def test_not_applicable_is_left_out_of_score() -> None:
    criteria = [attestation("a"), attestation("b", not_applicable_reason="n/a")]
    card = evaluate(make_input(criteria, attestations={"a": attested()}))
    assert card.dimensions["security"].score == 100.0


def test_not_applicable_blocker_does_not_block() -> None:
    card = evaluate(make_input([attestation(not_applicable_reason="n/a")]))
    assert card.dimensions["security"].status == "pass"
    assert card.blockers == []


# ---- stage applicability ----------------------------------------------------------------------


def test_production_criterion_does_not_apply_to_pilot_target() -> None:
    result = result_of(attestation(stage="production"), target="pilot")
    assert result.status == "not_applicable"
    assert result.applies is False
    assert result.reason == "applies from production; target is pilot"
    assert result.raw_status == "missing"


def test_production_criterion_applies_to_production_target() -> None:
    result = result_of(attestation(stage="production"), target="production")
    assert (result.status, result.applies) == ("missing", True)


def test_pilot_criterion_applies_to_production_target() -> None:
    assert result_of(attestation(stage="pilot"), target="production").applies is True


def test_non_applying_criterion_is_left_out_of_dimension_status_score_and_blockers() -> None:
    criteria = [attestation("pen_test", stage="production"), attestation("threat_model")]
    card = evaluate(make_input(criteria, attestations={"threat_model": attested()}, target="pilot"))
    assert card.dimensions["security"].status == "pass"
    assert card.dimensions["security"].score == 100.0
    assert card.blockers == []


def test_dimension_digest_does_not_depend_on_target() -> None:
    data = make_input([attestation("pen_test", stage="production")])
    pilot = evaluate(replace(data, target="pilot"))
    production = evaluate(replace(data, target="production"))
    assert pilot.dimensions["security"].digest == production.dimensions["security"].digest


# ---- dimension status and score ---------------------------------------------------------------


def test_dimension_without_criteria_passes_with_score_100() -> None:
    card = evaluate(make_input())
    assert all(dim.status == "pass" and dim.score == 100.0 for dim in card.dimensions.values())


def test_missing_blocker_fails_its_dimension() -> None:
    assert evaluate(make_input([attestation()])).dimensions["security"].status == "fail"


def test_failing_blocker_fails_its_dimension() -> None:
    card = evaluate(make_input([metric()], measurements={"latency_p99": measured(999.0)}))
    assert card.dimensions["engineering"].status == "fail"


def test_warn_criterion_makes_dimension_warn() -> None:
    card = evaluate(make_input([metric(warn_threshold=250.0)], measurements={"latency_p99": measured(280.0)}))
    assert card.dimensions["engineering"].status == "warn"


def _scored(*values: float) -> float:
    """The engineering score of one `latency <= 300, warn above 250` criterion per value."""
    criteria = [metric(f"m{i}", warn_threshold=250.0) for i in range(len(values))]
    measurements = {f"m{i}": measured(value) for i, value in enumerate(values)}
    return evaluate(make_input(criteria, measurements=measurements)).dimensions["engineering"].score


def test_score_of_pass_warn_fail_is_50() -> None:
    assert _scored(100.0, 280.0, 999.0) == 50.0


def test_score_of_one_pass_in_three_is_33_3() -> None:
    assert _scored(100.0, 999.0, 999.0) == 33.3


def test_score_of_two_passes_in_three_rounds_up_to_66_7() -> None:
    assert _scored(100.0, 100.0, 999.0) == 66.7


def test_score_rounds_half_up() -> None:
    # 1 warn in 8 criteria = 6.25, which binary-float rounding would give as 6.2.
    assert _scored(280.0, *([999.0] * 7)) == 6.3


def test_waived_and_missing_score_like_pass_and_fail() -> None:
    criteria = [attestation("a"), attestation("b")]
    card = evaluate(make_input(criteria, waivers={"a": [approved()]}))
    assert card.dimensions["security"].score == 50.0


def test_dimension_with_only_not_applicable_criteria_scores_100() -> None:
    card = evaluate(make_input([attestation(not_applicable_reason="n/a")]))
    assert card.dimensions["security"].score == 100.0


# ---- sign-offs --------------------------------------------------------------------------------


def test_signoff_is_missing_without_one() -> None:
    state = evaluate(make_input([attestation()])).dimensions["security"].signoff
    assert (state.state, state.by, state.at) == ("missing", None, None)


def test_signoff_is_valid_while_statuses_are_unchanged() -> None:
    data = with_signoffs(make_input([attestation()], attestations={"threat_model": attested()}))
    state = evaluate(data).dimensions["security"].signoff
    assert (state.state, state.by) == ("valid", "dave")


def test_signoff_goes_stale_when_a_status_changes() -> None:
    data = with_signoffs(make_input([attestation()], attestations={"threat_model": attested()}))
    expired = replace(data, now=NOW + timedelta(days=400), criteria=[attestation(valid_for_days=30)])
    assert evaluate(expired).dimensions["security"].signoff.state == "stale"


def test_signoff_stays_valid_when_a_value_changes_but_not_its_status() -> None:
    data = with_signoffs(make_input([metric()], measurements={"latency_p99": measured(100.0)}))
    later = replace(data, measurements={"latency_p99": measured(200.0)}, now=NOW + timedelta(hours=5))
    assert evaluate(later).dimensions["engineering"].signoff.state == "valid"


def test_signoff_goes_stale_when_a_criterion_is_added() -> None:
    data = with_signoffs(make_input([attestation()], attestations={"threat_model": attested()}))
    more = replace(data, criteria=[attestation(), attestation("pii", not_applicable_reason="n/a")])
    assert evaluate(more).dimensions["security"].signoff.state == "stale"


def test_signoffs_are_required_for_production_target() -> None:
    data = passing_everywhere()
    card = evaluate(replace(data, signoffs={}))
    assert card.decision == "no_go"
    assert [(b.dimension, b.status) for b in card.blockers] == [
        (name, "signoff_missing") for name in DIMENSIONS
    ]


def test_signoffs_are_optional_for_pilot_target() -> None:
    card = evaluate(replace(passing_everywhere(), signoffs={}, stage="prototype"))
    assert card.target == "pilot"
    assert card.decision == "go"


def test_require_signoff_for_pilot_makes_them_required_for_pilot() -> None:
    data = replace(passing_everywhere(), signoffs={}, stage="prototype", require_signoff_for_pilot=True)
    card = evaluate(data)
    assert card.decision == "no_go"
    assert {b.status for b in card.blockers} == {"signoff_missing"}


def test_stale_signoff_blocks_production_with_its_owner() -> None:
    data = passing_everywhere()
    signoffs = dict(data.signoffs) | {"product": replace(data.signoffs["product"], digest="0" * 64)}
    card = evaluate(replace(data, signoffs=signoffs))
    assert card.decision == "no_go"
    [blocker] = card.blockers
    assert (blocker.dimension, blocker.criterion, blocker.status, blocker.owner) == (
        "product",
        None,
        "signoff_stale",
        "carol",
    )


def test_signoff_state_is_reported_even_when_not_required() -> None:
    data = replace(passing_everywhere(), stage="prototype")
    card = evaluate(data)
    assert card.target == "pilot"
    assert all(dim.signoff.state == "valid" for dim in card.dimensions.values())


# ---- decision and blockers --------------------------------------------------------------------


def test_everything_passing_and_signed_off_is_go_for_production() -> None:
    card = evaluate(passing_everywhere())
    assert (card.target, card.decision, card.blockers) == ("production", "go", [])


def test_prohibited_tier_is_no_go_even_when_everything_passes() -> None:
    card = evaluate(replace(passing_everywhere(), risk_tier="prohibited"))
    assert card.decision == "no_go"
    assert card.blockers == [Blocker(None, None, "prohibited", card.blockers[0].reason, None)]


def test_prohibited_blocker_comes_first() -> None:
    card = evaluate(make_input([attestation()], risk_tier="prohibited"))
    assert [b.status for b in card.blockers] == ["prohibited", "missing"]


def test_warn_dimensions_still_allow_go() -> None:
    data = make_input([metric(warn_threshold=250.0)], measurements={"latency_p99": measured(280.0)})
    assert evaluate(data).decision == "go"


def test_failing_blocker_is_listed_with_reason_and_owner() -> None:
    card = evaluate(make_input([metric()], measurements={"latency_p99": measured(412.0, unit="ms")}))
    assert card.decision == "no_go"
    assert card.blockers == [
        Blocker(
            "engineering", "latency_p99", "fail", "p99 of latency_ms over 24h is 412 ms, above 300", "bob"
        )
    ]


def test_blocker_owner_is_none_when_dimension_has_no_responsible_person() -> None:
    card = evaluate(make_input([attestation()], owners={}))
    assert card.blockers[0].owner is None


def test_blockers_come_in_dimension_order_then_criteria_order_then_signoff() -> None:
    criteria = [
        attestation("sec_b"),
        attestation("eng_b", dimension="engineering"),
        attestation("sec_a"),
        attestation("ds_a", dimension="data_science"),
    ]
    card = evaluate(make_input(criteria, stage="pilot"))
    assert [(b.dimension, b.criterion) for b in card.blockers] == [
        ("data_science", "ds_a"),
        ("data_science", None),
        ("engineering", "eng_b"),
        ("engineering", None),
        ("product", None),
        ("security", "sec_b"),
        ("security", "sec_a"),
        ("security", None),
    ]


# ---- targets and vocabulary -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stage", "target"),
    [
        ("prototype", "pilot"),
        ("pilot", "production"),
        ("production", "production"),
        ("retired", "production"),
    ],
)
def test_default_target_of_each_stage(stage: str, target: str) -> None:
    assert default_target(stage) == target
    assert evaluate(make_input(stage=stage)).target == target


def test_explicit_target_overrides_the_default() -> None:
    assert evaluate(make_input(stage="pilot", target="pilot")).target == "pilot"


def test_unknown_stage_raises() -> None:
    with pytest.raises(ValueError, match="stage"):
        default_target("beta")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"target": "retired"}, "target"),
        ({"risk_tier": "extreme"}, "risk_tier"),
        ({"criteria": [attestation(dimension="legal")]}, "dimension"),
        ({"criteria": [attestation(kind="survey")]}, "kind"),
        ({"criteria": [attestation(severity="critical")]}, "severity"),
        ({"criteria": [attestation(stage="prototype")]}, "stage"),
        ({"criteria": [metric(op="<")]}, "op"),
        ({"criteria": [drift(method="kl")]}, "method"),
        ({"criteria": [attestation(), attestation()]}, "twice"),
    ],
)
def test_input_outside_the_vocabulary_raises(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        evaluate(replace(make_input(), **changes))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("15m", timedelta(minutes=15)),
        ("24h", timedelta(hours=24)),
        ("30d", timedelta(days=30)),
        ("1m", timedelta(minutes=1)),
    ],
)
def test_parse_window_reads_minutes_hours_and_days(text: str, expected: timedelta) -> None:
    assert parse_window(text) == expected


@pytest.mark.parametrize("text", ["", "24", "h", "1.5h", "24H", "0m", "-1d", " 24h", "24h ", "1w", "015m"])
def test_parse_window_rejects_anything_else(text: str) -> None:
    with pytest.raises(ValueError, match="whole number followed by m, h or d"):
        parse_window(text)


# ---- digests ----------------------------------------------------------------------------------


def test_scorecard_digest_is_stable_under_value_and_time_changes() -> None:
    before = evaluate(make_input([metric()], measurements={"latency_p99": measured(100.0)}))
    after = evaluate(
        make_input(
            [metric()],
            measurements={"latency_p99": Measurement(value=180.0, count=7, as_of=NOW + timedelta(hours=1))},
            now=NOW + timedelta(hours=2),
        )
    )
    assert before.digest == after.digest


def test_scorecard_digest_changes_with_a_status_change() -> None:
    passing = evaluate(make_input([metric()], measurements={"latency_p99": measured(100.0)}))
    failing = evaluate(make_input([metric()], measurements={"latency_p99": measured(400.0)}))
    assert passing.digest != failing.digest


def test_scorecard_digest_changes_with_the_target() -> None:
    data = make_input(stage="pilot")
    assert evaluate(data).digest != evaluate(replace(data, target="pilot")).digest


def test_dimension_digest_ignores_criteria_order() -> None:
    criteria = [attestation("a"), attestation("b"), attestation("c")]
    forward = evaluate(make_input(criteria)).dimensions["security"].digest
    backward = evaluate(make_input(criteria[::-1])).dimensions["security"].digest
    assert forward == backward


def test_dimension_digest_hashes_sorted_key_and_raw_status() -> None:
    import hashlib

    card = evaluate(make_input([attestation("b", stage="production"), attestation("a")], target="pilot"))
    expected = hashlib.sha256(b"a:missing\nb:missing").hexdigest()
    assert card.dimensions["security"].digest == expected
    assert dimension_digest(card.criteria) == expected


def test_dimension_digest_rejects_results_of_several_dimensions() -> None:
    card = evaluate(make_input([attestation(), metric()]))
    with pytest.raises(ValueError, match="one dimension"):
        dimension_digest(card.criteria)


# ---- Scorecard JSON (PRODUCT.md §3) -----------------------------------------------------------


def _json_card() -> dict[str, object]:
    criteria = [metric(warn_threshold=250), attestation(), attestation("pii", dimension="product")]
    data = make_input(
        criteria,
        measurements={"latency_p99": measured(412.0, unit="ms")},
        attestations={"pii": attested()},
        stage="pilot",
    )
    data = with_signoffs(data, ["data_science"])
    return evaluate(data).to_json()


def test_to_json_has_exactly_the_scorecard_keys() -> None:
    assert list(_json_card()) == [
        "project",
        "target",
        "decision",
        "computed_at",
        "dimensions",
        "criteria",
        "blockers",
        "ml_test_score",
    ]


def test_to_json_dimensions_have_status_score_and_signoff_in_order() -> None:
    dimensions = _json_card()["dimensions"]
    assert isinstance(dimensions, dict)
    assert list(dimensions) == list(DIMENSIONS)
    assert dimensions["data_science"] == {
        "status": "pass",
        "score": 100.0,
        "signoff": {"state": "valid", "by": "alice", "at": "2026-11-22T11:00:00+00:00"},
    }
    assert dimensions["security"]["signoff"] == {"state": "missing", "by": None, "at": None}


def test_to_json_criterion_has_the_contract_fields_plus_allowed_extras() -> None:
    criteria = _json_card()["criteria"]
    assert isinstance(criteria, list)
    contract = {"key", "dimension", "kind", "severity", "status", "value", "threshold", "warn_threshold"}
    contract |= {"reason", "as_of"}
    assert set(criteria[0]) == contract | {"title", "remediation", "applies", "sources"}
    assert criteria[0] | {"title": "", "remediation": "", "applies": True, "sources": []} == {
        "key": "latency_p99",
        "dimension": "engineering",
        "kind": "metric",
        "severity": "blocker",
        "status": "fail",
        "value": 412.0,
        "threshold": 300.0,
        "warn_threshold": 250.0,
        "reason": "p99 of latency_ms over 24h is 412 ms, above 300",
        "as_of": "2026-11-22T11:59:00+00:00",
        "title": "",
        "remediation": "",
        "applies": True,
        "sources": [],
    }


def test_to_json_numbers_are_floats_even_from_int_thresholds() -> None:
    criterion = _json_card()["criteria"][0]  # type: ignore[index]
    assert type(criterion["threshold"]) is float and type(criterion["warn_threshold"]) is float


def test_to_json_attestation_has_null_value_and_thresholds() -> None:
    criterion = _json_card()["criteria"][1]  # type: ignore[index]
    assert (criterion["value"], criterion["threshold"], criterion["as_of"]) == (None, None, None)


def test_to_json_blockers_have_dimension_criterion_status_reason_owner() -> None:
    blockers = _json_card()["blockers"]
    assert isinstance(blockers, list)
    assert blockers[0] == {
        "dimension": "engineering",
        "criterion": "latency_p99",
        "status": "fail",
        "reason": "p99 of latency_ms over 24h is 412 ms, above 300",
        "owner": "bob",
    }
    assert {"dimension": "engineering", "criterion": None, "status": "signoff_missing"}.items() <= blockers[
        1
    ].items()


def test_to_json_times_are_iso_8601_with_offset() -> None:
    tz = timezone(timedelta(hours=2))
    card = evaluate(make_input(now=NOW.astimezone(tz)))
    assert card.to_json()["computed_at"] == "2026-11-22T14:00:00+02:00"


def test_to_json_ml_test_score_is_null_without_the_template() -> None:
    assert _json_card()["ml_test_score"] is None


def test_to_json_round_trips_through_json() -> None:
    card = _json_card()
    assert json.loads(json.dumps(card)) == card


def test_scorecard_records_project_and_computed_at() -> None:
    card: Scorecard = evaluate(make_input())
    assert (card.project, card.computed_at) == ("fraud-detector", NOW)


# ---- purity -----------------------------------------------------------------------------------


def test_engine_imports_no_django_and_reads_no_clock() -> None:
    for module in ("engine", "mltestscore"):
        tree = ast.parse(Path(engine.__file__).with_name(f"{module}.py").read_text())
        imported = [
            name.name for node in ast.walk(tree) if isinstance(node, ast.Import) for name in node.names
        ] + [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
        assert not [name for name in imported if name.split(".")[0] in {"django", "time", "os", "io"}]
        called = {
            node.func.attr
            for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
        }
        assert not called & {"now", "today", "utcnow", "time"}
        assert "open" not in {
            node.func.id
            for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        }


# ---- provenance (PRODUCT.md §8) ---------------------------------------------------------------


def test_a_result_carries_the_sources_of_its_measurement() -> None:
    spec = metric(metric="health.up", aggregation="mean", op=">=", threshold=0.99, sources=("probe",))
    result = result_of(spec, measurements={spec.key: measured(1.0, sources=("probe:api", "probe:db"))})
    assert (result.status, result.sources) == ("pass", ("probe:api", "probe:db"))
    assert result.to_json()["sources"] == ["probe:api", "probe:db"]
    shifted = drift(sources=("prometheus",))
    pulled = measured(0.01, sources=("prometheus:prod",))
    assert result_of(shifted, measurements={shifted.key: pulled}).sources == ("prometheus:prod",)


def test_attestations_and_unmeasured_criteria_have_no_sources() -> None:
    assert result_of(attestation(), attestations={"threat_model": attested()}).to_json()["sources"] == []
    assert result_of(metric()).sources == ()


def test_missing_data_says_which_kinds_were_accepted() -> None:
    spec = metric(metric="health.up", aggregation="mean", op=">=", sources=("probe", "prometheus"))
    assert result_of(spec).reason == (
        "no health.up data from probe or prometheus over 24h (at least 1 sample needed)"
    )
    few = metric(metric="health.up", min_samples=100, sources=("probe",))
    assert result_of(few, measurements={few.key: measured(1.0, count=3)}).reason == (
        "only 3 samples of health.up from probe over 24h; 100 samples needed"
    )


def test_an_unknown_source_kind_is_refused_loudly() -> None:
    with pytest.raises(ValueError, match=r"criterion 'latency_p99': sources must be one of push, otlp"):
        evaluate(make_input([metric(sources=("pigeon",))]))
