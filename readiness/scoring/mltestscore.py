"""The ML Test Score (Breck et al., "The ML Test Score: A Rubric for ML Production Readiness and
Technical Debt Reduction", IEEE Big Data 2017), as PRODUCT.md §1 (Template 2) scores it.

Kept apart from the engine because it is a maturity measure, not a gate: it never changes a status or
the decision, it only summarises how many of the paper's 28 tests are attested, and how automatically.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

SECTIONS = ("features_and_data", "model_development", "ml_infrastructure", "monitoring")
KEY_PATTERN = re.compile(r"mlts_(features_and_data|model_development|ml_infrastructure|monitoring)_[1-7]")

# The paper's interpretation of the final score, each band with its inclusive upper bound: a score of
# exactly 1 is still "not totally untested", 1.5 already "first pass". Texts are the paper's, verbatim.
BANDS: tuple[tuple[float, str], ...] = (
    (0.0, "more of a research project than a productionized system"),
    (
        1.0,
        "not totally untested, but it is worth considering the possibility of serious holes in reliability",
    ),
    (
        2.0,
        "there's been first pass at basic productionization, but additional investment may be needed",
    ),
    (
        3.0,
        "reasonably tested, but it's possible that more of those tests and procedures may be automated",
    ),
    (5.0, "strong levels of automated testing and monitoring, appropriate for mission-critical systems"),
)
EXCEPTIONAL = "exceptional levels of automated testing and monitoring"

# Points per test: the paper gives half a point for a test run manually (documented and distributed)
# and a full point for one that is automated; Readiness reads "pushed through the API" as automated.
MANUAL_POINTS = 0.5
AUTOMATED_POINTS = 1.0


@dataclass(frozen=True)
class MLTestScore:
    score: float
    band: str
    sections: dict[str, float]

    def to_json(self) -> dict[str, Any]:
        return {"score": self.score, "band": self.band, "sections": dict(self.sections)}


def is_test_key(key: str) -> bool:
    """Whether a criterion key names one of the 28 tests (`mlts_<section>_<1..7>`)."""
    return KEY_PATTERN.fullmatch(key) is not None


def band(score: float) -> str:
    for upper, text in BANDS:
        if score <= upper:
            return text
    return EXCEPTIONAL


def ml_test_score(points: Mapping[str, float]) -> MLTestScore | None:
    """The score from the points each criterion earns (0, 0.5 or 1), by criterion key.

    Keys that are not tests are ignored; None when no test is present (the template is not applied).
    A section with none of its tests present scores 0, so a partly applied template cannot look mature.
    Sums of halves are exact in binary floating point, so no rounding is needed.
    """
    sections = dict.fromkeys(SECTIONS, 0.0)
    present = False
    for key, earned in points.items():
        match = KEY_PATTERN.fullmatch(key)
        if match is not None:
            present = True
            sections[match[1]] += earned
    if not present:
        return None
    # The paper takes the minimum, not the mean: the weakest area bounds production readiness.
    score = min(sections.values())
    return MLTestScore(score=score, band=band(score), sections=sections)
