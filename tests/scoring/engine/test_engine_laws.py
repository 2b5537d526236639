"""Laws the decision must obey for every input (hypothesis), whatever the mix of criteria and facts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from readiness.scoring.engine import (
    DIMENSIONS,
    AttestationFact,
    CriterionSpec,
    EvaluationInput,
    Measurement,
    Scorecard,
    SignOffFact,
    WaiverFact,
    evaluate,
)
from tests.scoring.engine.test_engine import NOW, OWNERS, make_input

# Small integer-valued numbers so values land on thresholds (the edges) often.
NUMBERS = st.integers(-3, 3).map(float)
SIGNOFF_MODES = st.sampled_from(["valid", "stale", "missing"])


@st.composite
def criterion_with_facts(draw: st.DrawFn, key: str) -> tuple[CriterionSpec, dict[str, object]]:
    """A criterion of any kind and the facts about it (measurement, attestation, waivers)."""
    kind = draw(st.sampled_from(["metric", "drift", "attestation"]))
    common: dict[str, object] = {
        "key": key,
        "kind": kind,
        "dimension": draw(st.sampled_from(DIMENSIONS)),
        "severity": draw(st.sampled_from(["blocker", "advisory"])),
        "stage": draw(st.sampled_from(["pilot", "production"])),
        "not_applicable_reason": draw(st.sampled_from([None, None, None, "n/a"])),
    }
    facts: dict[str, object] = {}
    if kind == "metric":
        spec = CriterionSpec(
            **common,  # type: ignore[arg-type]
            metric="m",
            window="1h",
            op=draw(st.sampled_from([">=", "<="])),
            threshold=draw(st.none() | NUMBERS),
            warn_threshold=draw(st.none() | NUMBERS),
            min_samples=draw(st.integers(1, 3)),
        )
    elif kind == "drift":
        spec = CriterionSpec(**common, metric="m", window="1h", method=draw(st.sampled_from(["psi", "ks"])))  # type: ignore[arg-type]
    else:
        spec = CriterionSpec(
            **common,  # type: ignore[arg-type]
            evidence_required=draw(st.booleans()),
            valid_for_days=draw(st.none() | st.integers(1, 30)),
        )
    if kind != "attestation" and draw(st.booleans()):
        value = draw(st.none() | NUMBERS | st.floats(0, 1))
        facts["measurement"] = Measurement(value=value, count=draw(st.integers(0, 4)), as_of=NOW)
    if kind == "attestation" and draw(st.booleans()):
        facts["attestation"] = AttestationFact(
            attested_at=NOW - timedelta(days=draw(st.integers(0, 40))),
            by="someone",
            automated=draw(st.booleans()),
            evidence_url=draw(st.sampled_from(["", "https://e.example"])),
        )
    facts["waivers"] = draw(
        st.lists(
            st.builds(
                WaiverFact,
                status=st.sampled_from(["pending", "approved", "rejected"]),
                expires_at=st.integers(-2, 2).map(lambda h: NOW + timedelta(hours=h)),
            ),
            max_size=2,
        )
    )
    return spec, facts


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[EvaluationInput, dict[str, str]]:
    """An input without sign-offs, and per dimension how its sign-off should stand (see `bind`)."""
    drawn = [draw(criterion_with_facts(f"c{i}")) for i in range(draw(st.integers(0, 8)))]
    data = make_input(
        [spec for spec, _ in drawn],
        measurements={s.key: f["measurement"] for s, f in drawn if "measurement" in f},  # type: ignore[misc]
        attestations={s.key: f["attestation"] for s, f in drawn if "attestation" in f},  # type: ignore[misc]
        waivers={s.key: f["waivers"] for s, f in drawn},  # type: ignore[misc]
        stage=draw(st.sampled_from(["prototype", "pilot", "production", "retired"])),
        target=draw(st.sampled_from([None, "pilot", "production"])),
        risk_tier=draw(st.sampled_from(["minimal", "limited", "high", "prohibited"])),
        require_signoff_for_pilot=draw(st.booleans()),
    )
    return data, {name: draw(SIGNOFF_MODES) for name in DIMENSIONS}


def bind(data: EvaluationInput, modes: Mapping[str, str]) -> EvaluationInput:
    """Give each dimension a sign-off that is valid for, stale against, or missing from this input."""
    digests = {name: dim.digest for name, dim in evaluate(data).dimensions.items()}
    signoffs = {
        name: SignOffFact(
            by=OWNERS[name] or "", at=NOW, digest=digests[name] if mode == "valid" else "0" * 64
        )
        for name, mode in modes.items()
        if mode != "missing"
    }
    return replace(data, signoffs=signoffs)


def blocker_set(card: Scorecard) -> set[tuple[str | None, str | None, str, str | None]]:
    return {(b.dimension, b.criterion, b.status, b.owner) for b in card.blockers}


LAWS = settings(max_examples=200, deadline=None)


@LAWS
@given(scenarios(), st.sampled_from(DIMENSIONS), st.sampled_from(["metric", "drift", "attestation"]))
def test_a_missing_blocker_always_gives_no_go(
    scenario: tuple[EvaluationInput, dict[str, str]], dimension: str, kind: str
) -> None:
    data, modes = scenario
    missing = CriterionSpec(
        key="zz_missing", dimension=dimension, kind=kind, metric="m", window="1h", threshold=0.0
    )
    card = evaluate(bind(replace(data, criteria=[*data.criteria, missing]), modes))
    assert card.decision == "no_go"
    assert (dimension, "zz_missing", "missing", OWNERS[dimension]) in blocker_set(card)


@LAWS
@given(scenarios())
def test_go_implies_no_blockers_and_no_go_implies_at_least_one(
    scenario: tuple[EvaluationInput, dict[str, str]],
) -> None:
    card = evaluate(bind(*scenario))
    assert (card.decision == "go") == (card.blockers == [])


@LAWS
@given(scenarios())
def test_decision_follows_tier_dimension_statuses_and_signoffs(
    scenario: tuple[EvaluationInput, dict[str, str]],
) -> None:
    data = bind(*scenario)
    card = evaluate(data)
    signoffs_required = card.target == "production" or data.require_signoff_for_pilot
    go = (
        data.risk_tier != "prohibited"
        and all(dim.status in ("pass", "warn") for dim in card.dimensions.values())
        and (not signoffs_required or all(dim.signoff.state == "valid" for dim in card.dimensions.values()))
    )
    assert card.decision == ("go" if go else "no_go")


@LAWS
@given(scenarios(), st.sampled_from(DIMENSIONS), st.sampled_from(["pilot", "production"]))
def test_adding_a_passing_advisory_criterion_never_changes_the_decision(
    scenario: tuple[EvaluationInput, dict[str, str]], dimension: str, stage: str
) -> None:
    # Adding a criterion changes its dimension's digest, so sign-offs are re-bound to the new input
    # with the same validity: the law is about the criterion, not about sign-offs going stale.
    data, modes = scenario
    passing = CriterionSpec(
        key="zz_advisory",
        dimension=dimension,
        kind="metric",
        severity="advisory",
        stage=stage,
        metric="m",
        window="1h",
        op=">=",
        threshold=0.0,
    )
    extended = replace(
        data,
        criteria=[*data.criteria, passing],
        measurements=dict(data.measurements) | {"zz_advisory": Measurement(value=1.0, count=1, as_of=NOW)},
    )
    before, after = evaluate(bind(data, modes)), evaluate(bind(extended, modes))
    assert after.decision == before.decision
    assert blocker_set(after) == blocker_set(before)


@LAWS
@given(scenarios(), st.data())
def test_decision_blockers_and_digests_do_not_depend_on_criteria_order(
    scenario: tuple[EvaluationInput, dict[str, str]], data: st.DataObject
) -> None:
    original, modes = scenario
    shuffled = replace(original, criteria=data.draw(st.permutations(list(original.criteria))))
    before, after = evaluate(bind(original, modes)), evaluate(bind(shuffled, modes))
    assert after.decision == before.decision
    assert blocker_set(after) == blocker_set(before)
    assert after.dimensions == before.dimensions
    assert after.digest == before.digest


@LAWS
@given(scenarios())
def test_results_stay_inside_the_vocabulary(scenario: tuple[EvaluationInput, dict[str, str]]) -> None:
    card = evaluate(bind(*scenario))
    for result in card.criteria:
        assert result.status in ("pass", "warn", "fail", "missing", "waived", "not_applicable")
        assert not (result.severity == "advisory" and result.status == "fail")
        assert result.applies or result.status == "not_applicable"
    for dim in card.dimensions.values():
        assert dim.status in ("pass", "warn", "fail")
        assert 0.0 <= dim.score <= 100.0
        assert round(dim.score, 1) == dim.score
