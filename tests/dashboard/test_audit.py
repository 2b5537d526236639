"""The project's audit log page (PRODUCT.md §2: readable by admins and the project's members): every
change, newest first, who made it and what it changed; nobody else reads it."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client

from readiness.dashboard.review.audit import PER_PAGE, field_changes
from readiness.projects.services import project_set_stage, token_create
from readiness.scoring.services import attestation_create, criterion_mark_not_applicable
from tests.conftest import Cast
from tests.dashboard.test_pages import ESCAPED, XSS, count_queries
from tests.factories import AttestationCriterionFactory, ProjectFactory

URL = "/projects/fraud-detector/audit/"


@pytest.fixture
def changed(cast: Cast) -> Cast:
    """Three recorded changes of the project, and one of another project."""
    card = AttestationCriterionFactory(project=cast.project, key="model_card", dimension="data_science")
    attestation_create(criterion=card, by=cast.data_science, evidence_url="https://wiki.example.com/card")
    criterion_mark_not_applicable(criterion=card, by=cast.data_science, reason="no card for a rules engine")
    project_set_stage(project=cast.project, stage="production", by=cast.admin)
    other = AttestationCriterionFactory(project=ProjectFactory(slug="elsewhere"), key="secret_thing")
    criterion_mark_not_applicable(criterion=other, by=cast.admin, reason="other project's business")
    return cast


@pytest.mark.parametrize("who", ["admin", "member", "data_science", "security"])
def test_admins_and_team_members_read_the_projects_changes_newest_first(
    changed: Cast, as_user: Callable[..., Client], who: str
) -> None:
    response = as_user(getattr(changed, who)).get(URL)
    assert response.status_code == 200
    actions = [line.action for line in response.context["audit"].lines]
    assert actions[0] == "project.stage"  # the newest first
    assert "criterion.not_applicable" in actions and "attestation.create" in actions
    content = response.content.decode()
    assert "no card for a rules engine" in content
    assert "other project&#x27;s business" not in content and "secret_thing" not in content


def test_an_update_shows_what_it_changed_from_and_to(changed: Cast, as_user: Callable[..., Client]) -> None:
    lines = as_user(changed.member).get(URL).context["audit"].lines
    marked = next(line for line in lines if line.action == "criterion.not_applicable")
    assert [(c.field, c.before, c.after) for c in marked.changes] == [
        ("not_applicable_reason", "—", "no card for a rules engine")
    ]
    assert marked.actor == "alice"


def test_leadership_reads_the_project_but_not_its_audit_log(changed: Cast, as_user: Callable) -> None:
    assert as_user(changed.leader).get("/projects/fraud-detector/").status_code == 200
    assert as_user(changed.leader).get(URL).status_code == 403


def test_outsiders_get_404_and_anonymous_the_login(changed: Cast, as_user: Callable) -> None:
    assert as_user(changed.outsider).get(URL).status_code == 404
    response = Client().get(URL)
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_the_audit_log_is_read_only(changed: Cast, as_user: Callable) -> None:
    assert as_user(changed.admin).post(URL, {}).status_code == 405


def test_only_those_who_may_read_it_see_the_link(changed: Cast, as_user: Callable) -> None:
    assert URL in as_user(changed.member).get("/projects/fraud-detector/").content.decode()
    assert URL not in as_user(changed.leader).get("/projects/fraud-detector/").content.decode()


def test_a_bad_page_number_shows_a_page_and_says_why(changed: Cast, as_user: Callable) -> None:
    response = as_user(changed.member).get(URL + "?page=abc")
    assert response.status_code == 200
    assert "is not a page number" in response.content.decode()
    assert response.context["audit"].number == 1


def test_pages_hold_fifty_entries_in_a_fixed_number_of_queries(changed: Cast, as_user: Callable) -> None:
    client = as_user(changed.member)
    few = count_queries(client, URL)
    card = changed.project.criteria.get(key="model_card")
    for n in range(PER_PAGE + 5):
        attestation_create(criterion=card, by=changed.data_science, note=f"re-attested {n}")
    assert count_queries(client, URL) == few
    assert len(client.get(URL).context["audit"].lines) == PER_PAGE
    second = client.get(URL + "?page=2").context["audit"]
    assert second.number == 2 and second.lines


def test_what_people_typed_is_escaped(changed: Cast, as_user: Callable) -> None:
    card = changed.project.criteria.get(key="model_card")
    attestation_create(criterion=card, by=changed.data_science, note=XSS)
    content = as_user(changed.member).get(URL).content.decode()
    assert ESCAPED in content and XSS not in content


def test_a_token_creation_is_listed_without_its_secret(changed: Cast, as_user: Callable) -> None:
    token, secret = token_create(
        project=changed.project, name="ci", scopes=["attest"], created_by=changed.admin
    )
    content = as_user(changed.member).get(URL).content.decode()
    assert "token." in content and "ci" in content
    assert secret not in content and token.hashed_secret not in content


def test_field_changes_list_creations_deletions_and_skip_bookkeeping() -> None:
    assert [(c.field, c.before, c.after) for c in field_changes(None, {"key": "x", "note": "", "id": 3})] == [
        ("key", None, "x")
    ]
    assert [(c.field, c.before, c.after) for c in field_changes({"key": "x", "title": "T"}, None)] == [
        ("key", "x", None),
        ("title", "T", None),
    ]
    long = "y" * 500
    (change,) = field_changes({"description": "a"}, {"description": long})
    assert change.after is not None and len(change.after) == 160 and change.after.endswith("…")
