"""Every dashboard page through Django's test client: who may read it, anonymous redirects, methods,
login and logout, HTML escaping and query counts. Every view test is also a permission test (STYLE.md)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from readiness.projects.models import LEADERSHIP_GROUP, Project, StageChange, Team
from readiness.scoring.models import Criterion
from readiness.scoring.services import scorecard_refresh
from tests.conftest import Cast
from tests.dashboard.conftest import evaluated, slugs
from tests.factories import (
    AttestationCriterionFactory,
    ProjectFactory,
    UserFactory,
)

XSS = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
READERS = ["admin", "leader", "member", "engineering"]
PORTFOLIO_QUERIES = 14  # at most, whatever the portfolio's size


# --- Access ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/", "/projects/fraud-detector/"])
def test_anonymous_is_redirected_to_login(cast: Cast, client: Client, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"/login/?next={url}"


@pytest.mark.parametrize("who", READERS)
def test_every_reader_sees_the_project_on_the_portfolio(cast: Cast, as_user: Callable, who: str) -> None:
    evaluated(cast.project)
    response = as_user(getattr(cast, who)).get("/")
    assert response.status_code == 200
    assert slugs(response) == ["fraud-detector"]
    assert b'href="/projects/fraud-detector/#security"' in response.content


def test_outsider_sees_an_empty_portfolio(cast: Cast, as_user: Callable) -> None:
    evaluated(cast.project)
    response = as_user(cast.outsider).get("/")
    assert response.status_code == 200
    assert slugs(response) == []
    # Not even the team's name leaks through the filter's choices.
    assert b"Fraud" not in response.content


@pytest.mark.parametrize("who", READERS)
def test_every_reader_opens_the_scorecard(cast: Cast, as_user: Callable, who: str) -> None:
    response = as_user(getattr(cast, who)).get("/projects/fraud-detector/")
    assert response.status_code == 200
    assert response.context["page"].decision == "no_go"


def test_outsider_gets_404_on_the_scorecard(cast: Cast, as_user: Callable) -> None:
    assert as_user(cast.outsider).get("/projects/fraud-detector/").status_code == 404


def test_unknown_project_is_404(cast: Cast, as_user: Callable) -> None:
    assert as_user(cast.admin).get("/projects/no-such-project/").status_code == 404


@pytest.mark.parametrize("url", ["/", "/projects/fraud-detector/"])
def test_pages_refuse_post(cast: Cast, as_user: Callable, url: str) -> None:
    assert as_user(cast.leader).post(url).status_code == 405


def test_login_page_logs_in_and_goes_to_next(cast: Cast, client: Client) -> None:
    cast.leader.set_password("a-long-passphrase")
    cast.leader.save()
    page = client.get("/login/?next=/projects/fraud-detector/")
    assert page.status_code == 200
    assert b'name="username"' in page.content
    response = client.post(
        "/login/",
        {"username": "lea", "password": "a-long-passphrase", "next": "/projects/fraud-detector/"},
    )
    assert response.status_code == 302
    assert response["Location"] == "/projects/fraud-detector/"


def test_login_goes_to_the_portfolio_by_default(cast: Cast, client: Client) -> None:
    cast.leader.set_password("a-long-passphrase")
    cast.leader.save()
    response = client.post("/login/", {"username": "lea", "password": "a-long-passphrase"})
    assert response["Location"] == "/"


def test_login_with_a_wrong_password_says_so(cast: Cast, client: Client) -> None:
    response = client.post("/login/", {"username": "lea", "password": "wrong"})
    assert response.status_code == 200
    assert b"Please enter a correct username and password" in response.content
    assert "_auth_user_id" not in client.session


def test_login_refuses_an_offsite_next(cast: Cast, client: Client) -> None:
    cast.leader.set_password("a-long-passphrase")
    cast.leader.save()
    response = client.post(
        "/login/", {"username": "lea", "password": "a-long-passphrase", "next": "https://evil.example/"}
    )
    assert response["Location"] == "/"


def test_logout_is_a_post(cast: Cast, as_user: Callable) -> None:
    client = as_user(cast.leader)
    assert client.get("/logout/").status_code == 405
    response = client.post("/logout/")
    assert response["Location"] == "/login/"
    assert client.get("/").status_code == 302


# --- Escaping -------------------------------------------------------------------------------------


def test_user_provided_text_is_escaped_everywhere(cast: Cast, as_user: Callable) -> None:
    Team.objects.filter(pk=cast.project.team_id).update(name=XSS)
    Project.objects.filter(pk=cast.project.pk).update(name=XSS, description=XSS)
    AttestationCriterionFactory(project=cast.project, key="xss", title=XSS, remediation=XSS)
    evaluated(cast.project)
    client = as_user(cast.leader)
    for url in ("/", f"/?q={XSS}", "/?team=%3Cscript%3E", "/projects/fraud-detector/"):
        content = client.get(url).content.decode()
        assert XSS not in content, url
        assert ESCAPED in content, url


# --- Query counts ---------------------------------------------------------------------------------


def add_projects(team: Team, count: int) -> None:
    for _ in range(count):
        project = ProjectFactory(team=team, stage="pilot")
        StageChange.objects.create(project=project, from_stage="prototype", to_stage="pilot")
        evaluated(project)


def count_queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


@pytest.mark.parametrize("who", ["leader", "member"])
def test_portfolio_queries_do_not_grow_with_the_portfolio(
    cast: Cast, as_user: Callable, django_assert_max_num_queries: Callable, who: str
) -> None:
    client = as_user(getattr(cast, who))
    add_projects(cast.project.team, 3)
    few = count_queries(client, "/")
    add_projects(cast.project.team, 27)
    # Session, user, leadership check, teams, and the figures counted in SQL (figures.py).
    with django_assert_max_num_queries(PORTFOLIO_QUERIES):
        assert client.get("/").status_code == 200
    many = count_queries(client, "/")
    assert len(client.get("/").context["rows"]) == 31
    assert few == many


def test_scorecard_queries_do_not_grow_with_the_criteria(
    cast: Cast, as_user: Callable, django_assert_max_num_queries: Callable
) -> None:
    client = as_user(cast.leader)
    for n in range(3):
        AttestationCriterionFactory(project=cast.project, key=f"check_{n}")
    scorecard_refresh(project=cast.project)
    few = count_queries(client, "/projects/fraud-detector/")
    for n in range(3, 30):
        AttestationCriterionFactory(project=cast.project, key=f"check_{n}")
    scorecard_refresh(project=cast.project)
    assert Criterion.objects.filter(project=cast.project).count() == 30
    # The page's actions and charts read a bounded few more (tests/dashboard/test_scorecard_charts.py
    # counts them with every kind of criterion, health targets and drift), and one its metric sources.
    with django_assert_max_num_queries(11):
        assert client.get("/projects/fraud-detector/").status_code == 200
    assert count_queries(client, "/projects/fraud-detector/") == few


def test_leadership_is_a_group_not_a_flag(cast: Cast, as_user: Callable) -> None:
    # A new member of the leadership group reads the portfolio without being on any team.
    reader = UserFactory(username="newboss")
    reader.groups.add(Group.objects.get(name=LEADERSHIP_GROUP))
    evaluated(cast.project)
    assert slugs(as_user(reader).get("/")) == ["fraud-detector"]
