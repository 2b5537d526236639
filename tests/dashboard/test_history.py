"""The history page: stored scorecards newest first, each with what changed since the one before,
built through the real services with the clock frozen at each step."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.test import Client

from readiness.dashboard.review.history import PER_PAGE, criterion_changes, signoff_changes
from readiness.projects.models import Project
from readiness.scoring.models import Criterion, Scorecard
from readiness.scoring.services import (
    attestation_create,
    criterion_mark_not_applicable,
    scorecard_refresh,
    signoff_create,
)
from tests.conftest import Cast
from tests.dashboard.test_pages import ESCAPED, XSS, count_queries
from tests.factories import AttestationCriterionFactory, MetricCriterionFactory, MetricPointFactory

URL = "/projects/fraud-detector/history/"
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
STEP = timedelta(hours=2)


def at(step: int) -> datetime:
    return T0 + step * STEP


@pytest.fixture
def lived(cast: Cast) -> Iterator[Cast]:
    """Six scorecards, one per step, each from a real action:
    0 nothing measured (no-go) · 1 model card attested · 2 latency measured: go · 3 data science signed
    off · 4 model card marked N/A: the sign-off goes stale · 5 latency regresses: no-go."""
    # A prototype aims at pilot, where sign-offs are optional: go needs only passing dimensions.
    Project.objects.filter(pk=cast.project.pk).update(stage="prototype")
    project = Project.objects.get(pk=cast.project.pk)
    model_card = AttestationCriterionFactory(
        project=project, key="model_card", title="A model card documents the model", dimension="data_science"
    )
    MetricCriterionFactory(
        project=project, key="p99_latency", title="p99 latency within target", threshold=300
    )
    with time_machine.travel(at(0), tick=False) as clock:
        scorecard_refresh(project=project)
        clock.move_to(at(1))
        attestation_create(criterion=model_card, by=cast.data_science)
        clock.move_to(at(2))
        MetricPointFactory(project=project, metric="latency_ms", value=100.0)
        scorecard_refresh(project=project)
        clock.move_to(at(3))
        signoff_create(project=project, dimension="data_science", by=cast.data_science)
        clock.move_to(at(4))
        criterion_mark_not_applicable(criterion=model_card, by=cast.data_science, reason="Rules-based model")
        clock.move_to(at(5))
        MetricPointFactory(project=project, metric="latency_ms", value=900.0)
        scorecard_refresh(project=project)
        yield cast


def entries(client: Client, url: str = URL) -> list[Any]:
    response = client.get(url)
    assert response.status_code == 200
    return response.context["history"].entries


# --- What changed ---------------------------------------------------------------------------------


def test_history_lists_scorecards_newest_first(lived: Cast, as_user: Callable) -> None:
    found = entries(as_user(lived.leader))
    assert [entry.computed_at for entry in found] == [at(step) for step in range(5, -1, -1)]
    assert [entry.decision for entry in found] == ["no_go", "go", "go", "go", "no_go", "no_go"]


def test_the_first_scorecard_has_nothing_to_compare_with(lived: Cast, as_user: Callable) -> None:
    first = entries(as_user(lived.leader))[-1]
    assert first.changes is None


def test_an_attestation_shows_as_a_criterion_status_change(lived: Cast, as_user: Callable) -> None:
    changes = entries(as_user(lived.leader))[4].changes
    assert [(c.key, c.title, c.before, c.after) for c in changes.criteria] == [
        ("model_card", "A model card documents the model", "missing", "pass")
    ]
    assert [
        (d.dimension, d.status_before, d.status_after, d.score_before, d.score_after)
        for d in changes.dimensions
    ] == [("data_science", "fail", "pass", 0.0, 100.0)]
    assert not changes.decision_changed


def test_a_decision_change_is_shown_with_its_cause(lived: Cast, as_user: Callable) -> None:
    changes = entries(as_user(lived.leader))[3].changes
    assert (changes.decision_before, changes.decision_after) == ("no_go", "go")
    assert [(c.key, c.before, c.after) for c in changes.criteria] == [("p99_latency", "missing", "pass")]
    assert [(d.dimension, d.delta) for d in changes.dimensions] == [("engineering", 100.0)]


def test_a_sign_off_shows_who_gave_it_and_when(lived: Cast, as_user: Callable) -> None:
    changes = entries(as_user(lived.leader))[2].changes
    assert [(s.dimension, s.change, s.before, s.by, s.at) for s in changes.signoffs] == [
        ("data_science", "given", "missing", "alice", at(3))
    ]
    assert changes.criteria == [] and changes.dimensions == []


def test_a_status_change_makes_the_sign_off_stale(lived: Cast, as_user: Callable) -> None:
    changes = entries(as_user(lived.leader))[1].changes
    assert [(c.key, c.before, c.after) for c in changes.criteria] == [
        ("model_card", "pass", "not_applicable")
    ]
    assert [(s.dimension, s.change, s.before) for s in changes.signoffs] == [
        ("data_science", "stale", "valid")
    ]


def test_a_regression_shows_the_decision_and_score_falling(lived: Cast, as_user: Callable) -> None:
    changes = entries(as_user(lived.leader))[0].changes
    assert (changes.decision_before, changes.decision_after) == ("go", "no_go")
    assert [(c.key, c.before, c.after, c.is_regression) for c in changes.criteria] == [
        ("p99_latency", "pass", "fail", True)
    ]
    assert [(d.dimension, d.score_before, d.score_after, d.delta_label) for d in changes.dimensions] == [
        ("engineering", 100.0, 0.0, "\u2212100")
    ]


def test_history_page_words_the_changes(lived: Cast, as_user: Callable) -> None:
    content = as_user(lived.leader).get(URL).content.decode()
    assert "Decision changed:</strong> Go" in content
    assert "p99 latency within target <code>p99_latency</code>" in content
    assert "sign-off went stale" in content
    assert "signed off by alice, 2 Nov 2026 15:00" in content
    assert "The first scorecard stored for this project." in content


def test_a_daily_snapshot_says_nothing_changed(cast: Cast, as_user: Callable) -> None:
    with time_machine.travel(T0, tick=False) as clock:
        scorecard_refresh(project=cast.project)
        clock.move_to(T0 + timedelta(days=1, minutes=1))
        scorecard_refresh(project=cast.project)
    newest = entries(as_user(cast.leader))[0]
    assert newest.changes is not None and newest.changes.nothing_changed
    assert "Nothing changed: a daily snapshot." in as_user(cast.leader).get(URL).content.decode()


def test_consecutive_daily_snapshots_fold_into_one_line(cast: Cast, as_user: Callable) -> None:
    with time_machine.travel(T0, tick=False) as clock:
        scorecard_refresh(project=cast.project)
        for day in range(1, 4):
            clock.move_to(T0 + timedelta(days=day, minutes=day))
            scorecard_refresh(project=cast.project)
        clock.move_to(T0 + timedelta(days=4))
        AttestationCriterionFactory(project=cast.project, key="new_check")
        scorecard_refresh(project=cast.project)
    response = as_user(cast.leader).get(URL)
    blocks = response.context["history"].blocks
    assert [type(block).__name__ for block in blocks] == ["HistoryEntry", "QuietRun", "HistoryEntry"]
    assert [entry.computed_at.day for entry in blocks[1].entries] == [5, 4, 3]
    content = response.content.decode()
    assert "3 Nov</time> to <time" in content and "5 Nov 2026</time>: 3 daily snapshots" in content
    assert "Nothing changed: a daily snapshot." not in content


# --- Diffs of payloads (pure) ---------------------------------------------------------------------


def result(key: str, status: str, dimension: str = "security") -> dict[str, Any]:
    return {"key": key, "title": key.title(), "dimension": dimension, "status": status}


def test_added_and_removed_criteria_are_changes() -> None:
    changes = criterion_changes(
        [result("old", "pass"), result("kept", "fail")], [result("kept", "fail"), result("new", "missing")]
    )
    assert [(c.key, c.before_label, c.after_label) for c in changes] == [
        ("new", "New", "Missing"),
        ("old", "Pass", "Removed"),
    ]


def signoff(state: str, by: str | None = None, at: str | None = None) -> dict[str, Any]:
    return {"security": {"status": "pass", "score": 100.0, "signoff": {"state": state, "by": by, "at": at}}}


def test_a_new_sign_off_over_a_valid_one_is_given_again() -> None:
    changes = signoff_changes(
        signoff("valid", "dave", "2026-11-01T10:00:00+00:00"),
        signoff("valid", "admin", "2026-11-02T10:00:00+00:00"),
    )
    assert [(c.change, c.by) for c in changes] == [("given", "admin")]


def test_a_sign_off_that_stays_stale_is_no_change() -> None:
    stale = signoff("stale", "dave", "2026-11-01T10:00:00+00:00")
    assert signoff_changes(stale, stale) == []


def test_a_sign_off_that_disappears_is_missing() -> None:
    changes = signoff_changes(signoff("stale", "dave", "2026-11-01T10:00:00+00:00"), signoff("missing"))
    assert [(c.change, c.before) for c in changes] == [("missing", "stale")]


# --- Pages and bad page numbers -------------------------------------------------------------------


def store_scorecards(project: Project, count: int) -> None:
    """``count`` scorecards an hour apart, the decision flipping every time."""
    for n in range(count):
        Scorecard.objects.create(
            project=project,
            target="production",
            decision="go" if n % 2 else "no_go",
            computed_at=T0 + timedelta(hours=n),
            digest=str(n),
            payload={
                "decision": "go" if n % 2 else "no_go",
                "target": "production",
                "dimensions": {},
                "criteria": [],
                "blockers": [],
            },
        )


def test_history_is_paginated_and_every_entry_on_a_page_has_its_diff(cast: Cast, as_user: Callable) -> None:
    store_scorecards(cast.project, PER_PAGE * 2 + 5)
    client = as_user(cast.leader)
    first = client.get(URL).context["history"]
    assert (first.number, first.num_pages, first.total, len(first.entries)) == (1, 3, 45, PER_PAGE)
    # The oldest entry of page 1 is compared with the newest of page 2.
    assert first.entries[-1].changes is not None and first.entries[-1].changes.decision_changed
    last = entries(client, f"{URL}?page=3")
    assert len(last) == 5
    assert last[-1].computed_at == T0 and last[-1].changes is None
    assert 'href="?page=2"' in client.get(URL).content.decode()


@pytest.mark.parametrize(
    ("page", "shown", "message"),
    [
        ("abc", 1, "“abc” is not a page number; showing page 1."),
        ("0", 1, "There is no page 0; showing page 1."),
        ("-3", 1, "There is no page -3; showing page 1."),
        ("99", 2, "There is no page 99; showing the last page (2)."),
        ("1e9", 1, "“1e9” is not a page number; showing page 1."),
        ("", 1, ""),
    ],
)
def test_a_bad_page_number_shows_the_nearest_page_and_says_so(
    cast: Cast, as_user: Callable, page: str, shown: int, message: str
) -> None:
    store_scorecards(cast.project, PER_PAGE + 1)
    response = as_user(cast.leader).get(URL, {"page": page})
    assert response.status_code == 200
    assert response.context["history"].number == shown
    assert response.context["history"].message == message
    if message:
        assert message in response.content.decode()


def test_a_project_without_scorecards_says_so(cast: Cast, as_user: Callable) -> None:
    response = as_user(cast.leader).get(URL)
    assert response.status_code == 200
    assert "No scorecard has been stored for this project yet" in response.content.decode()
    # Reading the history never evaluates: it shows what was stored.
    assert not Scorecard.objects.filter(project=cast.project).exists()


def test_history_queries_do_not_grow_with_the_scorecards(
    cast: Cast, as_user: Callable, django_assert_max_num_queries: Callable
) -> None:
    client = as_user(cast.leader)
    store_scorecards(cast.project, 3)
    few = count_queries(client, URL)
    store_scorecards(cast.project, PER_PAGE * 3)
    with django_assert_max_num_queries(7):
        assert client.get(URL).status_code == 200
    assert count_queries(client, URL) == few
    assert count_queries(client, f"{URL}?page=2") == few


# --- Access and escaping --------------------------------------------------------------------------


def test_anonymous_is_redirected_to_login(cast: Cast, client: Client) -> None:
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"] == f"/login/?next={URL}"


@pytest.mark.parametrize("who", ["admin", "leader", "member", "security"])
def test_every_reader_opens_the_history(cast: Cast, as_user: Callable, who: str) -> None:
    scorecard_refresh(project=cast.project)
    assert len(entries(as_user(getattr(cast, who)))) == 1


def test_outsider_gets_404(cast: Cast, as_user: Callable) -> None:
    scorecard_refresh(project=cast.project)
    assert as_user(cast.outsider).get(URL).status_code == 404


def test_unknown_project_is_404(cast: Cast, as_user: Callable) -> None:
    assert as_user(cast.admin).get("/projects/nope/history/").status_code == 404


@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_history_refuses_other_methods(cast: Cast, as_user: Callable, method: str) -> None:
    assert getattr(as_user(cast.leader), method)(URL).status_code == 405


def test_user_provided_text_is_escaped(cast: Cast, as_user: Callable) -> None:
    Project.objects.filter(pk=cast.project.pk).update(name=XSS)
    with time_machine.travel(T0, tick=False) as clock:
        scorecard_refresh(project=cast.project)
        clock.move_to(T0 + STEP)
        AttestationCriterionFactory(project=cast.project, key="xss", title=XSS)
        scorecard_refresh(project=cast.project)
    assert Criterion.objects.filter(project=cast.project, title=XSS).exists()
    content = as_user(cast.leader).get(URL + f"?page={XSS}").content.decode()
    assert XSS not in content
    assert "<script>" not in content
    assert ESCAPED in content  # the project's name and the criterion's title
    assert "“&lt;script&gt;alert(1)&lt;/sc…” is not a page number" in content
