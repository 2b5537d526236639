"""CSV and JSON export of the portfolio matrix: the rows the page shows for the same query string,
safe to open in a spreadsheet, named with the date, readable only by who may read the page."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import time_machine
from django.test import Client

from readiness.dashboard.portfolio.export import CSV_HEADER, csv_cell
from readiness.projects.models import Project, Team
from tests.conftest import Cast
from tests.dashboard.conftest import evaluated, slugs
from tests.dashboard.test_pages import ESCAPED, XSS, count_queries
from tests.factories import ProjectFactory

NOW = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)


def csv_rows(response: Any) -> list[dict[str, str]]:
    text = response.content.decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(text[1:])))


def exported(client: Client, query: str) -> tuple[list[str], list[str]]:
    """The slugs of the CSV and of the JSON export for one query string."""
    csv_response = client.get(f"/portfolio.csv?{query}")
    json_response = client.get(f"/portfolio.json?{query}")
    assert csv_response.status_code == json_response.status_code == 200
    return [row["slug"] for row in csv_rows(csv_response)], [
        p["slug"] for p in json_response.json()["projects"]
    ]


@pytest.mark.parametrize(
    "query",
    [
        "",
        "team=search",
        "stage=production",
        "stage=retired",
        "risk_tier=minimal",
        "decision=go",
        "decision=no_go",
        "decision=none",
        "q=invoices",
        "team=search&decision=none",
        "team=nope&stage=pilot",
    ],
)
def test_export_has_exactly_the_rows_the_page_shows(
    portfolio: dict[str, Project], cast: Cast, as_user: Callable, query: str
) -> None:
    client = as_user(cast.leader)
    page = slugs(client.get(f"/?{query}"))
    assert exported(client, query) == (page, page)


def test_csv_carries_the_matrix_cells(portfolio: dict[str, Project], cast: Cast, as_user: Callable) -> None:
    response = as_user(cast.leader).get("/portfolio.csv?q=invoices")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    text = response.content.decode()[1:]
    assert text.splitlines()[0].split(",") == CSV_HEADER
    (row,) = csv_rows(response)
    assert row["name"] == "OCR" and row["team"] == "Fraud" and row["decision"] == "no_go"
    assert row["security_status"] == "fail" and row["security_score"] == "0.0"
    assert (
        row["security_signoff"] == "missing" and row["blockers"] == "5"
    )  # the missing attestation and four sign-offs
    assert row["data_science_status"] == "pass" and row["stuck"] == "no"


def test_csv_marks_projects_without_a_scorecard(
    portfolio: dict[str, Project], cast: Cast, as_user: Callable
) -> None:
    (row,) = csv_rows(as_user(cast.leader).get("/portfolio.csv?decision=none"))
    assert (row["slug"], row["decision"], row["engineering_status"], row["computed_at"]) == (
        "reranker",
        "none",
        "",
        "",
    )


def test_json_describes_the_view_it_exports(
    portfolio: dict[str, Project], cast: Cast, as_user: Callable
) -> None:
    with time_machine.travel(NOW, tick=False):
        body = as_user(cast.leader).get("/portfolio.json?team=search&decision=bogus").json()
    assert body["generated_at"] == "2026-11-18T12:00:00+00:00"
    assert body["filters"] == {"team": "search", "stage": "", "risk_tier": "", "decision": "", "q": ""}
    assert body["ignored"] == ["Decision: “bogus” is not a valid value; ignored."]
    assert body["count"] == 2
    speller = next(p for p in body["projects"] if p["slug"] == "speller")
    assert speller["team"] == {"slug": "search", "name": "Search"}
    assert speller["decision"] == "go" and speller["target"] == "pilot"
    assert speller["dimensions"]["security"] == {"status": "pass", "score": 100.0, "signoff": "missing"}


@pytest.mark.parametrize(("extension", "content_type"), [("csv", "text/csv"), ("json", "application/json")])
def test_exports_are_downloads_named_with_the_date(
    cast: Cast, as_user: Callable, extension: str, content_type: str
) -> None:
    with time_machine.travel(NOW, tick=False):
        response = as_user(cast.leader).get(f"/portfolio.{extension}")
    assert response["Content-Type"].startswith(content_type)
    assert (
        response["Content-Disposition"]
        == f'attachment; filename="readiness-portfolio-2026-11-18.{extension}"'
    )
    assert response["Cache-Control"] == "private, no-store"


# --- Spreadsheet safety ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ['=HYPERLINK("http://evil","x")', "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1"]
)
def test_csv_quotes_cells_that_a_spreadsheet_would_run(cast: Cast, as_user: Callable, name: str) -> None:
    Project.objects.filter(pk=cast.project.pk).update(name=name)
    Team.objects.filter(pk=cast.project.team_id).update(name=name)
    (row,) = csv_rows(as_user(cast.leader).get("/portfolio.csv"))
    assert row["name"] == "'" + name
    assert row["team"] == "'" + name


def test_harmless_cells_are_left_as_they_are() -> None:
    assert [csv_cell(v) for v in ("Fraud detector", "a=b", 12, 0.5, None, "")] == [
        "Fraud detector",
        "a=b",
        12,
        0.5,
        "",
        "",
    ]


def test_json_keeps_names_exactly(cast: Cast, as_user: Callable) -> None:
    Project.objects.filter(pk=cast.project.pk).update(name=f"=1+1 {XSS}")
    body = json.loads(as_user(cast.leader).get("/portfolio.json").content)
    assert body["projects"][0]["name"] == f"=1+1 {XSS}"


def test_export_links_keep_the_filters_and_are_escaped(
    portfolio: dict[str, Project], cast: Cast, as_user: Callable
) -> None:
    content = as_user(cast.leader).get("/", {"team": "search", "q": XSS}).content.decode()
    assert 'href="/portfolio.csv?team=search&amp;q=%3Cscript%3Ealert%281%29%3C%2Fscript%3E"' in content
    assert 'href="/portfolio.json?team=search&amp;q=%3Cscript%3Ealert%281%29%3C%2Fscript%3E"' in content
    assert XSS not in content and ESCAPED in content
    assert 'href="/portfolio.csv"' in as_user(cast.leader).get("/").content.decode()


# --- Access ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("extension", ["csv", "json"])
def test_anonymous_is_redirected_to_login(cast: Cast, client: Client, extension: str) -> None:
    response = client.get(f"/portfolio.{extension}")
    assert response.status_code == 302
    assert response["Location"] == f"/login/?next=/portfolio.{extension}"


@pytest.mark.parametrize("extension", ["csv", "json"])
@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_exports_refuse_other_methods(cast: Cast, as_user: Callable, extension: str, method: str) -> None:
    assert getattr(as_user(cast.leader), method)(f"/portfolio.{extension}").status_code == 405


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("admin", ["fraud-detector", "ocr", "reranker", "speller"]),
        ("leader", ["fraud-detector", "ocr", "reranker", "speller"]),
        ("member", ["fraud-detector", "ocr"]),
        ("outsider", []),
    ],
)
def test_export_holds_only_what_the_reader_may_see(
    portfolio: dict[str, Project], cast: Cast, as_user: Callable, who: str, expected: list[str]
) -> None:
    assert exported(as_user(getattr(cast, who)), "") == (expected, expected)


def test_an_outsider_cannot_filter_their_way_in(
    portfolio: dict[str, Project], cast: Cast, as_user: Callable
) -> None:
    body = as_user(cast.outsider).get("/portfolio.json?team=fraud").json()
    assert body["projects"] == []
    assert body["ignored"] == ["Team: “fraud” is not a valid value; ignored."]


@pytest.mark.parametrize("extension", ["csv", "json"])
def test_export_queries_do_not_grow_with_the_portfolio(
    cast: Cast, as_user: Callable, django_assert_max_num_queries: Callable, extension: str
) -> None:
    client = as_user(cast.leader)
    for _ in range(3):
        evaluated(ProjectFactory(team=cast.project.team))
    few = count_queries(client, f"/portfolio.{extension}")
    for _ in range(20):
        evaluated(ProjectFactory(team=cast.project.team))
    with django_assert_max_num_queries(7):
        assert client.get(f"/portfolio.{extension}").status_code == 200
    assert count_queries(client, f"/portfolio.{extension}") == few
