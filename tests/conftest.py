"""The shared cast of every view and service test (STYLE.md): an admin, a leadership viewer, each
dimension's responsible person, a team member and an outsider, around one project."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from django.contrib.auth.models import Group

from readiness.projects.models import LEADERSHIP_GROUP, Project
from readiness.publishing import backoff
from readiness.scoring.requests import recent_flips
from readiness.telemetry.partitions import value_indexes_forget
from tests.factories import ProjectFactory, TeamFactory, UserFactory


@dataclass
class Cast:
    project: Project
    admin: object
    leader: object
    data_science: object
    engineering: object
    product: object
    security: object
    member: object
    outsider: object

    def owner(self, dimension: str) -> object:
        return getattr(self, dimension)


@pytest.fixture
def cast(db: None) -> Cast:
    admin = UserFactory(username="admin", is_staff=True, is_superuser=True)
    leader = UserFactory(username="lea")
    leader.groups.add(Group.objects.get_or_create(name=LEADERSHIP_GROUP)[0])
    owners = {
        "data_science": UserFactory(username="alice"),
        "engineering": UserFactory(username="bob"),
        "product": UserFactory(username="carol"),
        "security": UserFactory(username="dave"),
    }
    member = UserFactory(username="mia")
    outsider = UserFactory(username="oscar")
    team = TeamFactory(slug="fraud", name="Fraud")
    team.members.add(*owners.values(), member)
    project = ProjectFactory(
        slug="fraud-detector",
        name="Fraud detector",
        team=team,
        stage="pilot",
        risk_tier="high",
        **{f"owner_{dim}": user for dim, user in owners.items()},
    )
    return Cast(project=project, admin=admin, leader=leader, member=member, outsider=outsider, **owners)


@pytest.fixture(autouse=True)
def broker_backoff_cleared() -> Iterator[None]:
    """Each test starts as a fresh web process does: not backing off the broker because an earlier
    test's broker went away (readiness/publishing.py), nor riding on an evaluation an earlier test
    queued for a project id the database has since given again (readiness/scoring/requests.py), nor
    planning selections from the value indexes of an earlier test's partitions
    (readiness/telemetry/partitions.py)."""
    backoff.reset()
    recent_flips.until.clear()
    value_indexes_forget()
    yield
