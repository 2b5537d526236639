"""Fixtures of the dashboard page tests: clients for the cast, evaluated projects, a small portfolio."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from readiness.projects.models import Project
from readiness.scoring.models import Scorecard
from readiness.scoring.services import scorecard_refresh
from tests.conftest import Cast
from tests.factories import AttestationCriterionFactory, ProjectFactory, TeamFactory


@pytest.fixture
def as_user() -> Callable[[Any], Client]:
    def login(user: Any) -> Client:
        client = Client()
        client.force_login(user)
        return client

    return login


def slugs(response: Any) -> list[str]:
    return [row.slug for row in response.context["rows"]]


def evaluated(project: Project, *, blockers: int = 1) -> Project:
    """Give a project blocker criteria (never attested: missing) and two scorecards, the newest last."""
    for n in range(blockers):
        AttestationCriterionFactory(project=project, key=f"threat_model_{n}", dimension="security")
    Scorecard.objects.create(
        project=project,
        target="production",
        decision="go",
        computed_at=timezone.now() - timedelta(days=3),
        digest="old",
        payload={"dimensions": {}, "blockers": [], "criteria": []},
    )
    scorecard_refresh(project=project)
    return project


@pytest.fixture
def portfolio(cast: Cast) -> dict[str, Project]:
    """Five projects the leader sees, one per filter value worth telling apart."""
    search = TeamFactory(slug="search", name="Search")
    evaluated(cast.project)  # fraud team, pilot, high, no_go
    projects = {
        "fraud-detector": cast.project,
        "reranker": ProjectFactory(
            slug="reranker", name="Reranker", team=search, stage="production", risk_tier="minimal"
        ),
        "speller": evaluated(
            ProjectFactory(slug="speller", name="Speller", team=search, stage="prototype"), blockers=0
        ),
        "old-bot": ProjectFactory(slug="old-bot", name="Old bot", team=search, stage="retired"),
        "ocr": evaluated(
            ProjectFactory(
                slug="ocr", name="OCR", description="reads scanned invoices", team=cast.project.team
            )
        ),
    }
    return projects
