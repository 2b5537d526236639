"""A batch the database refuses although validation passed it (a gap in validation, or a database
constraint added later) is set aside as ``failed`` with the error, and never holds up the batches
around it: one bad push must not stop ingestion for every project."""

from __future__ import annotations

import uuid
from datetime import timedelta

import orjson
import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from readiness.projects.services import token_create
from readiness.telemetry.models import IngestBatch, MetricPoint
from readiness.telemetry.services import DIRECT_MAX_POINTS, batches_apply, batches_drain
from tests.conftest import Cast
from tests.factories import ProjectFactory

# A batch large enough to go through the outbox, where the worker applies it beside other batches.
N = DIRECT_MAX_POINTS + 1


def pushed(client: Client, secret: str, value: float, count: int = N) -> uuid.UUID:
    response = client.post(
        "/api/v1/metrics",
        orjson.dumps({"points": [{"metric": "latency_ms", "value": value}] * count}),
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

    assert batches_apply() == 2 * N

    refused = IngestBatch.objects.get(pk=bad)
    assert refused.state == "failed" and refused.error and refused.rows  # kept for a person to look at
    assert set(IngestBatch.objects.filter(pk__in=good).values_list("state", flat=True)) == {"done"}
    assert sorted(MetricPoint.objects.values_list("value", flat=True)) == [80.0] * N + [120.0] * N
    # Nothing is left to hold up what comes next, and the failed batch is never retried.
    later = pushed(client, secret, 130.0)
    assert batches_drain() == (N, False)
    assert IngestBatch.objects.get(pk=later).state == "done"
    assert IngestBatch.objects.get(pk=bad).state == "failed"
    assert MetricPoint.objects.count() == 3 * N


@pytest.mark.django_db(transaction=True)
def test_a_refused_batch_alone_is_set_aside_too(cast: Cast) -> None:
    bad = poisoned(cast.project.pk)
    assert batches_apply(first=bad) == 0
    assert IngestBatch.objects.get(pk=bad).state == "failed"
    assert MetricPoint.objects.count() == 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="a CHECK constraint added to a live table")
def test_a_small_push_the_database_refuses_goes_to_the_worker_and_is_set_aside(
    client: Client, cast: Cast
) -> None:
    """The request writes a small push itself; if the database refuses its points (a constraint added
    after validation was written), the push is still acknowledged, stored pending, and the worker sets
    it aside as for any batch. Nothing half-written: no point, no "done" record."""
    secret = token_create(project=cast.project, name="ci", scopes=["metrics:write"])[1]
    with connection.cursor() as cursor:
        cursor.execute(
            "ALTER TABLE telemetry_metricpoint ADD CONSTRAINT test_value_below CHECK (value < 1000)"
        )
    try:
        batch_id = pushed(client, secret, 5000.0, count=1)
        batch = IngestBatch.objects.get(pk=batch_id)
        assert batch.state == "pending" and batch.rows and not MetricPoint.objects.exists()
        good = pushed(client, secret, 10.0, count=1)
        assert IngestBatch.objects.get(pk=good).state == "done"
        assert batches_apply() == 0
        assert IngestBatch.objects.get(pk=batch_id).state == "failed"
        assert list(MetricPoint.objects.values_list("value", flat=True)) == [10.0]
    finally:
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE telemetry_metricpoint DROP CONSTRAINT test_value_below")
