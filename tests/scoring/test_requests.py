"""Evaluation requests coalesce: a burst of triggers queues one evaluation, and a trigger right after
this process queued one does not even ask the database (readiness/scoring/requests.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from readiness.celery import app
from readiness.projects.models import Project
from readiness.scoring.requests import evaluation_request
from tests.factories import ProjectFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def empty_queue() -> None:
    app.control.purge()  # the evaluations these tests queue are never run


def started(project: Project) -> None:
    """What an evaluation does first: clear the flag."""
    Project.objects.filter(pk=project.pk).update(evaluation_pending=False)


def test_a_trigger_right_after_a_queued_evaluation_rides_on_it_without_a_query(
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    project = ProjectFactory()
    with django_capture_on_commit_callbacks(execute=True):
        assert evaluation_request(project_id=project.pk) is True
    with CaptureQueriesContext(connection) as queries:
        assert evaluation_request(project_id=project.pk) is False
    assert len(queries) == 0
    project.refresh_from_db()
    assert project.evaluation_pending  # the queued evaluation, due a second later, will read its data


def test_once_the_queued_evaluation_may_have_started_a_trigger_queues_the_next(
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    project = ProjectFactory()
    delay = 0.2
    with django_capture_on_commit_callbacks(execute=True):
        assert evaluation_request(project_id=project.pk, delay=delay) is True
    time.sleep(delay / 2 + 0.05)  # the margin is half the delay
    started(project)
    with django_capture_on_commit_callbacks(execute=True):
        assert evaluation_request(project_id=project.pk, delay=delay) is True
    project.refresh_from_db()
    assert project.evaluation_pending


def test_an_uncommitted_request_lets_the_next_one_ask_the_database() -> None:
    project = ProjectFactory()
    assert evaluation_request(project_id=project.pk) is True  # its commit never comes (the test's atomic)
    started(project)
    assert evaluation_request(project_id=project.pk) is True


def test_another_projects_request_is_not_covered(
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    first, second = ProjectFactory(), ProjectFactory()
    with django_capture_on_commit_callbacks(execute=True):
        assert evaluation_request(project_id=first.pk) is True
    assert evaluation_request(project_id=second.pk) is True
