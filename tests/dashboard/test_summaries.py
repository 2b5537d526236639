"""What keeps the portfolio fast at thousands of projects and still right: a small summary stored with
each scorecard (never the payload read), the matrix paged and its rows written in Python, and lists
that name a few projects rather than all of them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from readiness.dashboard.portfolio.selectors import (
    DimensionCell,
    PortfolioFilters,
    PortfolioRow,
    blocker_keys,
    portfolio_rows,
)
from readiness.dashboard.portfolio.views import MATRIX_PAGE_SIZE
from readiness.dashboard.templatetags.portfolio_matrix import matrix_rows
from readiness.projects.models import Project
from readiness.scoring.models import Scorecard, scorecard_summary
from tests.conftest import Cast
from tests.dashboard.conftest import evaluated
from tests.dashboard.test_pages import ESCAPED, XSS
from tests.factories import ProjectFactory


def rows() -> list[PortfolioRow]:
    return portfolio_rows(projects=Project.objects.all(), filters=PortfolioFilters(), now=timezone.now())


def test_a_stored_scorecard_carries_its_summary(cast: Cast) -> None:
    evaluated(cast.project)
    latest = Scorecard.objects.filter(project=cast.project).latest()
    assert latest.summary == scorecard_summary(latest.payload)
    security = latest.payload["dimensions"]["security"]
    assert latest.summary["dimensions"]["security"] == {
        "status": security["status"],
        "score": security["score"],
        "signoff": security["signoff"]["state"],
    }
    assert len(latest.summary["blockers"]) == len(latest.payload["blockers"])


def test_the_portfolio_never_reads_a_scorecard_payload(cast: Cast) -> None:
    evaluated(cast.project)
    with CaptureQueriesContext(connection) as queries:
        (row,) = rows()
    assert row.cells[3].status == "fail"  # security: the attestation is missing
    assert not [q["sql"] for q in queries.captured_queries if '"payload"' in q["sql"]]


def test_a_new_scorecard_is_read_and_the_old_summary_no_longer_shown(cast: Cast) -> None:
    evaluated(cast.project)
    assert rows()[0].cells[3].status == "fail"  # security: the attestation is missing
    Scorecard.objects.create(
        project=cast.project,
        target="production",
        decision="go",
        computed_at=timezone.now() + timedelta(seconds=1),
        digest="all-good",
        payload={"dimensions": {"security": {"status": "pass", "score": 100.0}}, "blockers": []},
    )
    (row,) = rows()
    assert (row.decision, row.cells[3].status, row.blockers) == ("go", "pass", [])


def test_the_summary_keeps_only_the_blocker_parts_the_portfolio_counts(cast: Cast) -> None:
    evaluated(cast.project)
    (row,) = rows()
    assert row.blockers and all(
        set(blocker) == {"dimension", "criterion", "status"} for blocker in row.blockers
    )


def test_blocker_keys_count_each_blocker_once() -> None:
    blockers = [
        {"dimension": "security", "criterion": "pen_test", "status": "fail"},
        {"dimension": "security", "criterion": "pen_test", "status": "fail"},
        {"dimension": "security", "criterion": None, "status": "signoff_missing"},
        {"dimension": None, "criterion": None, "status": "prohibited"},
    ]
    assert blocker_keys(blockers) == (
        ("security", "pen_test", True),
        ("security", "signoff_missing", False),
        (None, "prohibited", False),
    )


# --- The matrix rows -----------------------------------------------------------------------------


def row(**overrides: object) -> PortfolioRow:
    values: dict[str, object] = {
        "pk": 1,
        "slug": "fraud-detector",
        "name": "Fraud detector",
        "team_slug": "fraud",
        "team_name": "Fraud",
        "stage": "pilot",
        "risk_tier": "high",
        "target_date": None,
        "days_in_stage": 1,
        "stuck": False,
        "decision": "no_go",
        "target": "production",
        "computed_at": timezone.now(),
        "cells": [
            DimensionCell("data_science", "pass", 100.0, "valid"),
            DimensionCell("engineering", "warn", 62.5, "missing"),
            DimensionCell("product", None, None, None),
            DimensionCell("security", "fail", 0.0, "stale"),
        ],
        "blockers": [{"dimension": "security", "criterion": "pen_test", "status": "fail"}],
        "weekly_decisions": ((date(2026, 11, 16), "no_go"),),
    }
    return PortfolioRow(**(values | overrides))  # type: ignore[arg-type]


def test_matrix_rows_say_each_status_in_words_and_link_each_cell() -> None:
    html = matrix_rows([row()])
    assert '<a href="/projects/fraud-detector/">Fraud detector</a>' in html
    link = 'href="/projects/fraud-detector/#engineering"'
    assert f'{link} aria-label="Fraud detector, Engineering: Warn, score 62.5"' in html
    assert '<span class="cell__score">62.5</span>' in html and '<span class="cell__score">100</span>' in html
    assert 'class="cell cell--none"' in html and "Product: Not evaluated" in html
    assert "1 day</span>" in html and "for production · 1 blocker" in html


def test_matrix_rows_flag_stuck_projects() -> None:
    html = matrix_rows([row(stuck=True, days_in_stage=90)])
    assert '<tr class="is-stuck">' in html and "⚑ Stuck" in html and "90 days" in html


def test_matrix_rows_escape_what_people_wrote() -> None:
    html = matrix_rows([row(name=XSS, team_name=f"\"{XSS}'")])
    assert XSS not in html
    assert html.count(ESCAPED) == 6  # the link, its team line, and each cell's label
    assert "&quot;&lt;script&gt;" in html and "&#x27;" in html


def test_matrix_rows_match_the_page(cast: Cast, as_user: Callable) -> None:
    evaluated(cast.project)
    content = as_user(cast.leader).get("/").content.decode()
    assert matrix_rows(rows()) in content


def test_a_long_stuck_list_names_the_ten_longest_stuck(cast: Cast, as_user: Callable, settings: Any) -> None:
    settings.READINESS_STUCK_AFTER_DAYS = 30
    for n in range(12):
        ProjectFactory(
            slug=f"stuck-{n:02d}",
            name=f"Stuck {n:02d}",
            team=cast.project.team,
            stage_changed_at=timezone.now() - timedelta(days=40 + n),
        )
    content = as_user(cast.leader).get("/").content.decode()
    stuck_list = content[content.index('aria-label="Stuck in pilot"') :]
    stuck_list = stuck_list[: stuck_list.index("</ul>")]
    assert stuck_list.count("<li>") == 10
    assert "Stuck 11" in stuck_list and "Stuck 01" not in stuck_list  # the longest-stuck first
    assert "and 2 more, flagged in the matrix" in stuck_list
    assert content.count('<tr class="is-stuck">') == 12


# --- The matrix, paged ---------------------------------------------------------------------------


@pytest.fixture
def many(cast: Cast) -> list[Project]:
    """Five projects more than a page of the matrix, besides the cast's own, in the cast's team."""
    return [
        ProjectFactory(slug=f"many-{n:02d}", name=f"Many {n:02d}", team=cast.project.team)
        for n in range(MATRIX_PAGE_SIZE + 4)
    ]


def test_the_matrix_shows_one_page_and_the_figures_count_every_project(
    cast: Cast, many: list[Project], as_user: Callable
) -> None:
    content = as_user(cast.leader).get("/").content.decode()
    assert content.count('class="matrix__project"') == MATRIX_PAGE_SIZE
    total = MATRIX_PAGE_SIZE + 5
    assert f'<span class="kpi__value">{total}</span>' in content
    assert f"Download these {total} rows" in content
    assert f"Projects 1–{MATRIX_PAGE_SIZE} of {total} · page 1 of 2" in content  # noqa: RUF001 -- the page writes a range with an en dash
    assert 'rel="next" href="?page=2"' in content and 'rel="prev"' not in content


def test_the_next_page_shows_the_rest_and_links_back(
    cast: Cast, many: list[Project], as_user: Callable
) -> None:
    content = as_user(cast.leader).get("/?page=2").content.decode()
    assert content.count('class="matrix__project"') == 5
    # Sorted by name after the cast's "Fraud detector": rows 51 to 55 are the last five.
    assert "Many 49" in content and "Many 53" in content and "Many 48" not in content
    assert 'rel="prev" href="?page=1"' in content and 'rel="next"' not in content


def test_page_links_and_exports_keep_the_filters_but_not_the_page(
    cast: Cast, many: list[Project], as_user: Callable
) -> None:
    team = cast.project.team.slug
    content = as_user(cast.leader).get(f"/?team={team}&page=2").content.decode()
    assert f'rel="prev" href="?team={team}&amp;page=1"' in content
    assert f'href="/portfolio.csv?team={team}" download' in content
    csv = as_user(cast.leader).get(f"/portfolio.csv?team={team}&page=2").content.decode()
    assert len(csv.strip().splitlines()) == 1 + MATRIX_PAGE_SIZE + 5  # the header and every project


def test_a_page_that_is_not_there_shows_the_nearest_and_says_so(
    cast: Cast, many: list[Project], as_user: Callable
) -> None:
    content = as_user(cast.leader).get("/?page=7").content.decode()
    assert "There is no page 7; showing the last page (2)." in content
    assert content.count('class="matrix__project"') == 5
    content = as_user(cast.leader).get("/?page=first").content.decode()
    assert "“first” is not a page number; showing page 1." in content


def test_a_small_portfolio_has_no_pager(cast: Cast, as_user: Callable) -> None:
    content = as_user(cast.leader).get("/").content.decode()
    assert 'aria-label="Matrix pages"' not in content
