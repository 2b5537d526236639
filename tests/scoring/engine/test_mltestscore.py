"""The ML Test Score (PRODUCT.md §1, Template 2), computed by the engine from attestations."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta

import pytest

from readiness.scoring.engine import AttestationFact, CriterionSpec, Scorecard, evaluate
from readiness.scoring.mltestscore import SECTIONS, band, is_test_key, ml_test_score
from tests.scoring.engine.test_engine import NOW, approved, attestation, attested, make_input

RESEARCH = "more of a research project than a productionized system"
UNTESTED = "not totally untested, but it is worth considering the possibility of serious holes in reliability"
FIRST_PASS = "there's been first pass at basic productionization, but additional investment may be needed"
REASONABLE = "reasonably tested, but it's possible that more of those tests and procedures may be automated"
STRONG = "strong levels of automated testing and monitoring, appropriate for mission-critical systems"
EXCEPTIONAL = "exceptional levels of automated testing and monitoring"


def _test(section: str, n: int, **fields: object) -> CriterionSpec:
    dimension = "data_science" if section in ("features_and_data", "model_development") else "engineering"
    fields = {"severity": "advisory", "dimension": dimension} | fields
    return attestation(f"mlts_{section}_{n}", **fields)


def score_of(plan: Mapping[str, Sequence[str]], **inputs: object) -> Scorecard:
    """Evaluate all 28 tests; `plan[section]` lists, from test 1 on, "auto" or "manual" attestations
    (tests beyond the list are never attested)."""
    criteria = [_test(section, n) for section in SECTIONS for n in range(1, 8)]
    facts: dict[str, AttestationFact] = {}
    for section, kinds in plan.items():
        for n, kind in enumerate(kinds, start=1):
            facts[f"mlts_{section}_{n}"] = attested(automated=kind == "auto")
    return evaluate(make_input(criteria, attestations=facts, **inputs))  # type: ignore[arg-type]


def test_hand_computed_score_is_the_minimum_section_with_its_band() -> None:
    card = score_of(
        {
            "features_and_data": ["auto"] * 4,
            "model_development": ["auto"] * 3 + ["manual"],
            "ml_infrastructure": ["auto"] * 5,
            "monitoring": ["manual"] * 7,
        }
    )
    assert card.ml_test_score is not None
    assert card.ml_test_score.sections == {
        "features_and_data": 4.0,
        "model_development": 3.5,
        "ml_infrastructure": 5.0,
        "monitoring": 3.5,
    }
    assert card.ml_test_score.score == 3.5
    assert card.ml_test_score.band == STRONG


def test_manual_attestation_scores_half_and_automated_scores_one() -> None:
    plan = {section: ["manual", "auto"] for section in SECTIONS}
    card = score_of(plan)
    assert card.ml_test_score is not None
    assert set(card.ml_test_score.sections.values()) == {1.5}


def test_all_28_automated_scores_7_exceptional() -> None:
    card = score_of({section: ["auto"] * 7 for section in SECTIONS})
    assert card.ml_test_score is not None
    assert (card.ml_test_score.score, card.ml_test_score.band) == (7.0, EXCEPTIONAL)


def test_nothing_attested_scores_0_research_project() -> None:
    card = score_of({})
    assert card.ml_test_score is not None
    assert (card.ml_test_score.score, card.ml_test_score.band) == (0.0, RESEARCH)


@pytest.mark.parametrize(
    ("score", "text"),
    [
        (0.0, RESEARCH),
        (0.5, UNTESTED),
        (1.0, UNTESTED),
        (1.5, FIRST_PASS),
        (2.0, FIRST_PASS),
        (2.5, REASONABLE),
        (3.0, REASONABLE),
        (3.5, STRONG),
        (5.0, STRONG),
        (5.5, EXCEPTIONAL),
        (7.0, EXCEPTIONAL),
    ],
)
def test_band_edges_are_upper_inclusive(score: float, text: str) -> None:
    assert band(score) == text


def test_expired_attestation_scores_zero() -> None:
    criteria = [_test(section, 1, valid_for_days=30) for section in SECTIONS]
    facts = {spec.key: attested(at=NOW - timedelta(days=30), automated=True) for spec in criteria}
    card = evaluate(make_input(criteria, attestations=facts))
    assert card.ml_test_score is not None
    assert card.ml_test_score.score == 0.0


def test_attestation_one_microsecond_before_expiry_still_scores() -> None:
    criteria = [_test(section, 1, valid_for_days=30) for section in SECTIONS]
    at = NOW - timedelta(days=30) + timedelta(microseconds=1)
    facts = {spec.key: attested(at=at, automated=True) for spec in criteria}
    card = evaluate(make_input(criteria, attestations=facts))
    assert card.ml_test_score is not None
    assert card.ml_test_score.score == 1.0


def test_waived_test_scores_zero() -> None:
    criteria = [_test(section, 1) for section in SECTIONS]
    facts = {spec.key: attested(automated=True) for spec in criteria}
    card = evaluate(make_input(criteria, attestations=facts, waivers={"mlts_monitoring_1": [approved()]}))
    assert card.ml_test_score is not None
    assert card.ml_test_score.sections["monitoring"] == 0.0


def test_not_applicable_test_scores_zero_even_when_attested() -> None:
    criteria = [_test(section, 1) for section in SECTIONS[:3]]
    criteria.append(_test("monitoring", 1, not_applicable_reason="batch model, no serving"))
    facts = {spec.key: attested(automated=True) for spec in criteria}
    card = evaluate(make_input(criteria, attestations=facts))
    assert card.ml_test_score is not None
    assert card.ml_test_score.sections["monitoring"] == 0.0


def test_attestation_missing_required_evidence_scores_zero() -> None:
    criteria = [_test("features_and_data", 1, evidence_required=True)]
    card = evaluate(make_input(criteria, attestations={criteria[0].key: attested(evidence_url="")}))
    assert card.ml_test_score is not None
    assert card.ml_test_score.sections["features_and_data"] == 0.0


def test_section_without_any_test_scores_zero() -> None:
    criteria = [_test(section, n) for section in SECTIONS[:3] for n in range(1, 8)]
    facts = {spec.key: attested(automated=True) for spec in criteria}
    card = evaluate(make_input(criteria, attestations=facts))
    assert card.ml_test_score is not None
    assert card.ml_test_score.sections["monitoring"] == 0.0
    assert card.ml_test_score.score == 0.0


def test_test_scores_whatever_the_target() -> None:
    # A maturity measure: a test raised to "production" still counts when judging for pilot.
    criteria = [_test(section, 1, stage="production") for section in SECTIONS]
    facts = {spec.key: attested(automated=True) for spec in criteria}
    card = evaluate(make_input(criteria, attestations=facts, target="pilot"))
    assert card.ml_test_score is not None
    assert card.ml_test_score.score == 1.0


def test_no_test_criteria_gives_no_ml_test_score() -> None:
    card = evaluate(make_input([attestation("threat_model")]))
    assert card.ml_test_score is None


@pytest.mark.parametrize(
    ("key", "is_test"),
    [
        ("mlts_features_and_data_1", True),
        ("mlts_monitoring_7", True),
        ("mlts_monitoring_0", False),
        ("mlts_monitoring_8", False),
        ("mlts_monitoring_1_extra", False),
        ("xmlts_monitoring_1", False),
        ("mlts_serving_1", False),
    ],
)
def test_only_keys_of_the_28_tests_count(key: str, is_test: bool) -> None:
    assert is_test_key(key) is is_test
    assert (ml_test_score({key: 1.0}) is not None) is is_test


def test_untested_advisory_tests_do_not_block_the_decision() -> None:
    card = score_of({})
    assert card.decision == "go"
    assert card.dimensions["data_science"].status == "warn"


def test_ml_test_score_json_shape() -> None:
    card = score_of({section: ["auto", "manual"] for section in SECTIONS})
    assert card.to_json()["ml_test_score"] == {
        "score": 1.5,
        "band": FIRST_PASS,
        "sections": dict.fromkeys(SECTIONS, 1.5),
    }


def test_scorecard_digest_changes_when_a_manual_test_becomes_automated() -> None:
    manual = score_of({section: ["manual"] for section in SECTIONS})
    automated = score_of({section: ["auto"] for section in SECTIONS})
    assert [r.status for r in manual.criteria] == [r.status for r in automated.criteria]
    assert manual.digest != automated.digest
