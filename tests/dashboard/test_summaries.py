"""What keeps the portfolio fast at 1,000 projects and still right: latest scorecards remembered per
process by id (never served for another scorecard, one query whatever the memo holds), the matrix rows
written in Python, and lists that name a few projects rather than all of them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
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
    portfolio_rows,
)
from readiness.dashboard.portfolio.summaries import Summary, _Memo, blocker_keys, latest_summaries, memo
from readiness.dashboard.templatetags.portfolio_matrix import matrix_rows
from readiness.projects.models import Project
from readiness.scoring.models import Scorecard
from tests.conftest import Cast
from tests.dashboard.conftest import evaluated
from tests.dashboard.test_pages import ESCAPED, XSS
from tests.factories import ProjectFactory


@pytest.fixture(autouse=True)
def empty_memo() -> Iterator[None]:
    memo.clear()
    yield
    memo.clear()


def rows() -> list[PortfolioRow]:
    return portfolio_rows(projects=Project.objects.all(), filters=PortfolioFilters(), now=timezone.now())


def summary_sql(queries: CaptureQueriesContext) -> str:
    (sql,) = [q["sql"] for q in queries.captured_queries if '"scoring_scorecard"."digest"' in q["sql"]]
    return sql


def test_a_remembered_scorecard_is_not_read_again(cast: Cast) -> None:
    evaluated(cast.project)
    with CaptureQueriesContext(connection) as first:
        cold = rows()
    with CaptureQueriesContext(connection) as second:
        warm = rows()
    latest = Scorecard.objects.filter(project=cast.project).latest().pk
    assert f'CASE WHEN ("scoring_scorecard"."id" IN ({latest}) OR' in summary_sql(first)
    # Warm: the payload is read only for a scorecard newer than every one the projects query saw.
    assert f'CASE WHEN "scoring_scorecard"."id" > {latest} THEN' in summary_sql(second)
    assert len(first) == len(second)
    assert [(r.decision, r.cells, r.blockers) for r in warm] == [
        (r.decision, r.cells, r.blockers) for r in cold
    ]


def test_a_scorecard_stored_after_the_projects_query_is_read_in_the_same_query(cast: Cast) -> None:
    evaluated(cast.project)
    rows()
    known = Scorecard.objects.filter(project=cast.project).latest()
    newer = Scorecard.objects.create(
        project=cast.project,
        target="production",
        decision="go",
        computed_at=timezone.now() + timedelta(seconds=1),
        digest="newer",
        payload={"dimensions": {"security": {"status": "pass", "score": 100.0}}, "blockers": []},
    )
    # The projects query saw ``known``; by the time the summaries are read, ``newer`` is the latest.
    result = latest_summaries(
        digests={known.pk: known.digest}, ids_query=Scorecard.objects.filter(pk=newer.pk).values("pk")
    )
    assert result[cast.project.pk]["decision"] == "go"
    assert result[cast.project.pk]["dimensions"]["security"]["status"] == "pass"


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


def test_a_remembered_summary_is_never_served_for_another_digest(cast: Cast) -> None:
    evaluated(cast.project)
    latest = Scorecard.objects.filter(project=cast.project).latest()
    # As if the id had been reused (a rolled-back test database): the memo holds another scorecard.
    memo.put_many({latest.pk: Summary(digest="another", dimensions={}, blockers=[], keys=())})
    (row,) = rows()
    assert row.cells[3].status == "fail"
    assert row.blocker_keys == blocker_keys(latest.payload["blockers"])


def test_the_memo_keeps_only_the_blocker_parts_the_portfolio_counts(cast: Cast) -> None:
    evaluated(cast.project)
    (row,) = rows()
    assert row.blockers and all(
        set(blocker) == {"dimension", "criterion", "status"} for blocker in row.blockers
    )


def test_the_memo_forgets_the_least_recently_used_first() -> None:
    small = _Memo(2)
    entry = Summary(digest="d", dimensions={}, blockers=[], keys=())
    small.put_many({1: entry, 2: entry})
    small.get_many([1])
    small.put_many({3: entry})
    assert set(small.get_many([1, 2, 3])) == {1, 3}


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
