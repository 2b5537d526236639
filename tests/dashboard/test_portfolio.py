"""The portfolio page's content: filters (with and without htmx), KPIs, matrix, funnel, top blockers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from readiness.projects.models import Project, StageChange
from tests.conftest import Cast
from tests.dashboard.conftest import slugs


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["fraud-detector", "ocr", "reranker", "speller"]),
        ("team=search", ["reranker", "speller"]),
        ("stage=production", ["reranker"]),
        ("stage=retired", ["old-bot"]),
        ("risk_tier=minimal", ["reranker"]),
        ("decision=go", ["speller"]),
        ("decision=no_go", ["fraud-detector", "ocr"]),
        ("decision=none", ["reranker"]),
        ("q=invoices", ["ocr"]),
        ("q=SPELL", ["speller"]),
        ("team=search&decision=none", ["reranker"]),
    ],
)
def test_each_filter_narrows_the_portfolio(
    portfolio: dict[str, Project], cast: Cast, as_user: Callable, query: str, expected: list[str]
) -> None:
    response = as_user(cast.leader).get(f"/?{query}")
    assert response.status_code == 200
    assert sorted(slugs(response)) == expected


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("team=nope", "Team: “nope” is not a valid value; ignored."),
        ("stage=launched", "Stage: “launched” is not a valid value; ignored."),
        ("risk_tier=extreme", "Risk tier: “extreme” is not a valid value; ignored."),
        ("decision=maybe", "Decision: “maybe” is not a valid value; ignored."),
        (f"q={'x' * 101}", "Search: “" + "x" * 40 + "…” is not a valid value; ignored."),
    ],
)
def test_a_bad_filter_value_is_ignored_with_a_message(
    portfolio: dict[str, Project], cast: Cast, as_user: Callable, query: str, message: str
) -> None:
    response = as_user(cast.leader).get(f"/?{query}")
    assert response.status_code == 200
    assert sorted(slugs(response)) == ["fraud-detector", "ocr", "reranker", "speller"]
    assert response.context["ignored"] == [message]
    assert message.encode() in response.content


def test_a_bad_filter_does_not_drop_the_good_ones(
    portfolio: dict[str, Project], cast: Cast, as_user: Callable
) -> None:
    response = as_user(cast.leader).get("/?team=search&stage=launched")
    assert sorted(slugs(response)) == ["reranker", "speller"]


def test_htmx_request_gets_only_the_results(
    portfolio: dict[str, Project], cast: Cast, as_user: Callable
) -> None:
    response = as_user(cast.leader).get("/?team=search", HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert b"<html" not in response.content
    assert b'<form class="filters"' not in response.content
    assert b"Readiness matrix" in response.content
    assert "HX-Request" in response["Vary"]


def test_htmx_history_restore_gets_the_whole_page(
    portfolio: dict[str, Project], cast: Cast, as_user: Callable
) -> None:
    response = as_user(cast.leader).get(
        "/?team=search", HTTP_HX_REQUEST="true", HTTP_HX_HISTORY_RESTORE_REQUEST="true"
    )
    assert b"<html" in response.content


def test_filter_form_works_without_javascript(
    portfolio: dict[str, Project], cast: Cast, as_user: Callable
) -> None:
    content = as_user(cast.leader).get("/?team=search").content.decode()
    assert '<form class="filters" method="get" action="/"' in content
    assert '<button type="submit" class="button">Apply</button>' in content
    assert '<option value="search" selected>Search</option>' in content


def test_matrix_cells_carry_status_words_and_link_to_the_dimension(
    portfolio: dict[str, Project], cast: Cast, as_user: Callable
) -> None:
    content = as_user(cast.leader).get("/?q=fraud").content.decode()
    assert 'href="/projects/fraud-detector/#security"' in content
    # Colour is never the only signal: the cell says the status in words.
    assert "Fraud detector, Security: Fail, score 0.0" in content
    assert "Fraud detector, Engineering: Pass, score 100.0" in content


def test_kpis_count_decisions(portfolio: dict[str, Project], cast: Cast, as_user: Callable) -> None:
    kpis = as_user(cast.leader).get("/").context["kpis"]
    assert (kpis.projects, kpis.go, kpis.no_go, kpis.not_evaluated) == (4, 1, 2, 1)
    assert kpis.go_percent == 25


def test_stuck_projects_are_flagged(
    portfolio: dict[str, Project], cast: Cast, as_user: Callable, settings: Any
) -> None:
    settings.READINESS_STUCK_AFTER_DAYS = 30
    Project.objects.filter(slug="ocr").update(stage_changed_at=timezone.now() - timedelta(days=45))
    response = as_user(cast.leader).get("/")
    assert [row.slug for row in response.context["rows"] if row.stuck] == ["ocr"]
    assert response.context["kpis"].stuck == 1
    pilot = response.context["funnel"].stages[1]
    assert [row.slug for row in pilot.stuck] == ["ocr"]
    assert b"\xe2\x9a\x91 Stuck" in response.content


def test_funnel_counts_what_projects_reached(
    portfolio: dict[str, Project], cast: Cast, as_user: Callable
) -> None:
    # The retired bot once was in production: it still counts as having reached it.
    StageChange.objects.create(project=portfolio["old-bot"], from_stage="pilot", to_stage="production")
    funnel = as_user(cast.leader).get("/").context["funnel"]
    counts = [(stage.stage, stage.count, stage.reached) for stage in funnel.stages]
    assert counts == [("prototype", 1, 5), ("pilot", 2, 4), ("production", 1, 2)]
    assert [stage.conversion_percent for stage in funnel.stages] == [None, 80, 50]
    assert funnel.retired == 1


def test_top_blockers_name_the_criterion_and_the_projects(
    portfolio: dict[str, Project], cast: Cast, as_user: Callable
) -> None:
    response = as_user(cast.leader).get("/")
    top = response.context["top_blockers"][0]
    assert (top.dimension, top.key, top.is_criterion) == ("security", "threat_model_0", True)
    assert sorted(row.slug for row in top.projects) == ["fraud-detector", "ocr"]
    assert top.label == "Threat model 0"
    signoffs = [b for b in response.context["top_blockers"] if b.key == "signoff_missing"]
    assert [b.dimension for b in signoffs] == ["data_science", "engineering", "product", "security"]
    assert signoffs[0].label == "Sign-off missing"
    security = next(d for d in response.context["blocking_dimensions"] if d.dimension == "security")
    assert (security.projects, security.percent) == (2, 50)
