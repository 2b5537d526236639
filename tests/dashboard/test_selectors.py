"""The portfolio's aggregates are pure functions over fetched rows: tested here without a database."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from readiness.dashboard.common.display import format_number
from readiness.dashboard.portfolio.selectors import (
    PortfolioRow,
    blocking_dimensions,
    in_stage,
    portfolio_funnel,
    portfolio_kpis,
    top_blockers,
)
from readiness.dashboard.scorecard.scorecards import requirement


def row(
    slug: str, stage: str = "pilot", *, days: int = 10, reached: int | None = None, **kw: Any
) -> PortfolioRow:
    ranks = {"prototype": 0, "pilot": 1, "production": 2}
    return PortfolioRow(
        pk=hash(slug) % 10_000,
        slug=slug,
        name=slug.capitalize(),
        team_slug="t",
        team_name="T",
        stage=stage,
        risk_tier="limited",
        target_date=None,
        days_in_stage=days,
        stuck=kw.pop("stuck", False),
        decision=kw.pop("decision", None),
        target=None,
        computed_at=datetime(2026, 1, 1, tzinfo=UTC),
        cells=[],
        blockers=kw.pop("blockers", []),
        reached_rank=reached if reached is not None else ranks.get(stage, -1),
    )


def blocker(dimension: str | None, criterion: str | None, status: str = "missing") -> dict[str, Any]:
    return {"dimension": dimension, "criterion": criterion, "status": status, "reason": "", "owner": None}


def test_an_empty_portfolio_has_no_percentages() -> None:
    kpis = portfolio_kpis([])
    funnel = portfolio_funnel([])
    assert kpis.go_percent is None
    assert funnel.overall_percent is None
    assert [stage.conversion for stage in funnel.stages] == [None, None, None]
    assert [stage.median_days for stage in funnel.stages] == [None, None, None]


def test_abandoned_prototypes_count_against_conversion() -> None:
    rows = [
        row("a", "prototype"),
        row("b", "retired", reached=0),  # an abandoned prototype
        row("c", "retired", reached=2),  # served production, then retired
        row("d", "production"),
    ]
    funnel = portfolio_funnel(rows)
    assert [(s.count, s.reached) for s in funnel.stages] == [(1, 4), (0, 2), (1, 2)]
    assert [s.conversion_percent for s in funnel.stages] == [None, 50, 100]
    assert funnel.overall_percent == 50
    assert funnel.retired == 2


def test_median_days_is_over_the_projects_now_in_the_stage() -> None:
    rows = [row("a", days=10), row("b", days=20), row("c", days=90), row("d", "production", days=400)]
    assert portfolio_funnel(rows).stages[1].median_days == 20


def test_retired_projects_are_left_out_unless_asked_for() -> None:
    rows = [row("a"), row("b", "retired")]
    assert [r.slug for r in in_stage(rows, "")] == ["a"]
    assert [r.slug for r in in_stage(rows, "retired")] == ["b"]


def test_a_project_counts_once_per_blocker_however_often_it_is_listed() -> None:
    rows = [
        row("a", blockers=[blocker("security", "pen_test"), blocker("security", "threat_model")]),
        row("b", blockers=[blocker("security", "pen_test"), blocker("security", None, "signoff_missing")]),
        row("c", blockers=[blocker(None, None, "prohibited")]),
    ]
    top = top_blockers(rows)
    assert [(b.key, len(b.projects)) for b in top] == [
        ("pen_test", 2),
        ("threat_model", 1),
        ("prohibited", 1),
        ("signoff_missing", 1),
    ]
    assert top[2].label == "Prohibited risk tier" and top[2].dimension_label == "Risk tier"
    security = next(d for d in blocking_dimensions(rows) if d.dimension == "security")
    assert (security.projects, security.percent) == (2, 67)


def test_top_blockers_are_capped() -> None:
    rows = [row("a", blockers=[blocker("product", f"check_{n}") for n in range(20)])]
    assert len(top_blockers(rows, limit=8)) == 8


def test_numbers_read_like_a_person_wrote_them() -> None:
    assert [format_number(v) for v in (412.0, 0.84692, 0.0005931, 12345.6, None)] == [
        "412",
        "0.8469",
        "0.0005931",
        "12,346",
        "—",
    ]


def test_requirements_follow_each_kinds_rule() -> None:
    assert requirement(kind="metric", op="<=", method="", threshold=300, warn_threshold=250) == (
        "target ≤ 300 (warns above 250)"
    )
    assert requirement(kind="metric", op=">=", method="", threshold=0.999, warn_threshold=None) == (
        "target ≥ 0.999"
    )
    assert requirement(kind="drift", op="", method="ks", threshold=0.05, warn_threshold=None) == (
        "KS p-value; fails below 0.05"
    )
    assert requirement(kind="attestation", op="", method="", threshold=None, warn_threshold=None) == ""
