"""Fixtures of the API tests: the shared cast around ``fraud-detector``, plus what the endpoints act
on (an attestation criterion, a metric criterion, a pending waiver), another project, and clients
for people and for project tokens."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client

from readiness.projects.models import Project
from readiness.projects.services import token_create
from readiness.scoring.models import Criterion, Waiver
from tests.conftest import Cast
from tests.factories import (
    AttestationCriterionFactory,
    MetricCriterionFactory,
    ProjectFactory,
    WaiverFactory,
)

ALL_SCOPES = ["metrics:write", "scorecard:read", "attest"]


@dataclass
class World:
    cast: Cast
    project: Project
    other: Project  # another team's project: it does not exist for fraud-detector's people and tokens
    model_card: Criterion  # data_science attestation, owner alice
    p99_latency: Criterion  # engineering metric, owner bob
    waiver: Waiver  # pending, on p99_latency, requested by the member


@pytest.fixture
def world(cast: Cast) -> World:
    model_card = AttestationCriterionFactory(
        project=cast.project, key="model_card", dimension="data_science", title="Model card"
    )
    p99 = MetricCriterionFactory(project=cast.project, key="p99_latency", dimension="engineering")
    waiver = WaiverFactory(criterion=p99, requested_by=cast.member)
    other = ProjectFactory(slug="churn-model")
    return World(
        cast=cast, project=cast.project, other=other, model_card=model_card, p99_latency=p99, waiver=waiver
    )


@pytest.fixture
def as_user() -> Callable[[Any], Client]:
    def login(user: Any) -> Client:
        client = Client()
        client.force_login(user)
        return client

    return login


@pytest.fixture
def bearer(db: None) -> Callable[..., Client]:
    """A client carrying a new token of ``project`` with ``scopes`` (all of them by default)."""
    counter = iter(range(1_000))

    def make(project: Project, scopes: list[str] | None = None) -> Client:
        _, secret = token_create(project=project, name=f"token-{next(counter)}", scopes=scopes or ALL_SCOPES)
        return Client(headers={"Authorization": f"Bearer {secret}"})

    return make


def assert_error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """The response has ``status`` and the one error shape of PRODUCT.md §3."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code
    return body["error"]
