"""A batch the database refuses although validation passed it (a gap in validation, or a database
constraint added later) is set aside as ``failed`` with the error, and never holds up the batches
around it: one bad push must not stop ingestion for every project."""

from __future__ import annotations

import uuid
from datetime import timedelta

import orjson
import pytest
from django.test import Client
from django.utils import timezone

from readiness.projects.services import token_create
from readiness.telemetry.models import IngestBatch, MetricPoint
from readiness.telemetry.services import batches_apply, batches_drain
from tests.conftest import Cast
from tests.factories import ProjectFactory


def pushed(client: Client, secret: str, value: float) -> uuid.UUID:
    response = client.post(
        "/api/v1/metrics",
        orjson.dumps({"points": [{"metric": "latency_ms", "value": value}]}),
        content_type="application/json",
        headers={"authorization": f"Bearer {secret}"},
    )
    assert response.status_code == 202
    return uuid.UUID(response.json()["batch_id"])


def poisoned(project_id: int) -> uuid.UUID:
    """A pending batch whose stored row is not a number where the value goes: what the database would
    refuse if validation ever let such a row through."""
    batch_id = uuid.uuid4()
    IngestBatch.objects.create(
        id=batch_id,
        project_id=project_id,
        body_sha256="0" * 64,
        accepted=1,
        rows=b"latency_ms\t2026-11-30T10:00:00+00:00\tnot-a-number\t{}\n",
        # Received first: the oldest pending batch, claimed together with the good ones.
        received_at=timezone.now() - timedelta(seconds=5),
    )
    return batch_id


@pytest.mark.django_db(transaction=True)
def test_a_refused_batch_is_set_aside_and_the_others_are_applied(client: Client, cast: Cast) -> None:
    other = ProjectFactory(slug="other-team-model")
    secret = token_create(project=cast.project, name="ci", scopes=["metrics:write"])[1]
    other_secret = token_create(project=other, name="ci", scopes=["metrics:write"])[1]
    bad = poisoned(cast.project.pk)
    good = [pushed(client, secret, 120.0), pushed(client, other_secret, 80.0)]

    assert batches_apply() == 2

    refused = IngestBatch.objects.get(pk=bad)
    assert refused.state == "failed" and refused.error and refused.rows  # kept for a person to look at
    assert set(IngestBatch.objects.filter(pk__in=good).values_list("state", flat=True)) == {"done"}
    assert sorted(MetricPoint.objects.values_list("value", flat=True)) == [80.0, 120.0]
    # Nothing is left to hold up what comes next, and the failed batch is never retried.
    later = pushed(client, secret, 130.0)
    assert batches_drain() == (1, False)
    assert IngestBatch.objects.get(pk=later).state == "done"
    assert IngestBatch.objects.get(pk=bad).state == "failed"
    assert MetricPoint.objects.count() == 3


@pytest.mark.django_db(transaction=True)
def test_a_refused_batch_alone_is_set_aside_too(cast: Cast) -> None:
    bad = poisoned(cast.project.pk)
    assert batches_apply(first=bad) == 0
    assert IngestBatch.objects.get(pk=bad).state == "failed"
    assert MetricPoint.objects.count() == 0
