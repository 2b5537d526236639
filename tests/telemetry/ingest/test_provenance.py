"""Provenance on every point (PRODUCT.md §8): pushes are "push:<token name>", reserved health.* names
are refused from pushes, a token's odd name survives COPY, and the migration marks old points legacy."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from django.utils import timezone

from readiness.projects.services import token_create
from readiness.telemetry.models import IngestBatch, MetricPoint
from readiness.telemetry.provenance import SOURCE_KINDS, is_reserved, kind_of, source_label
from readiness.telemetry.push import PushInvalid
from readiness.telemetry.services import DIRECT_MAX_POINTS, batch_ingest, batches_apply, batches_store
from tests.conftest import Cast
from tests.factories import ProjectFactory

URL = "/api/v1/metrics"


def push(client: Client, body: Any, secret: str) -> Any:
    headers = {"authorization": f"Bearer {secret}"}
    return client.post(URL, orjson.dumps(body), content_type="application/json", headers=headers)


def test_source_labels_name_a_known_kind() -> None:
    assert SOURCE_KINDS == ("push", "otlp", "probe", "prometheus", "mlflow")
    assert source_label("probe", "api") == "probe:api"
    assert kind_of("prometheus:prod:eu") == "prometheus"  # a name may hold colons
    with pytest.raises(ValueError, match="unknown source kind 'carrier'"):
        source_label("carrier", "pigeon")
    assert is_reserved("health.up") and not is_reserved("healthy.up")


def test_a_push_stores_its_points_as_from_its_token(client: Client, cast: Cast) -> None:
    secret = token_create(project=cast.project, name="ci-pipeline", scopes=["metrics:write"])[1]
    response = push(client, {"points": [{"metric": "latency_ms", "value": 1.5}]}, secret)
    assert response.status_code == 202
    assert IngestBatch.objects.get().source == "push:ci-pipeline"
    batches_apply()
    assert MetricPoint.objects.get().source == "push:ci-pipeline"


def test_a_push_of_a_reserved_name_is_refused_whole(client: Client, cast: Cast) -> None:
    """The forged availability of issue 12: a team's token must not write the probes' health.up."""
    secret = token_create(project=cast.project, name="ci", scopes=["metrics:write"])[1]
    body = {
        "points": [
            {"metric": "latency_ms", "value": 120.0},
            {"metric": "health.up", "value": 1.0, "labels": {"target": "api"}},
            {"metric": "health.latency_ms", "value": 3.0},
        ]
    }
    response = push(client, body, secret)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    reserved = "names starting with 'health.' are reserved for Readiness' health checks"
    assert error["details"] == [
        {"index": 1, "field": "metric", "message": reserved},
        {"index": 2, "field": "metric", "message": reserved},
    ]
    assert not IngestBatch.objects.exists()  # refused whole: not even latency_ms


@pytest.mark.django_db
def test_only_a_probe_source_may_write_reserved_names() -> None:
    project = ProjectFactory()
    body = orjson.dumps({"points": [{"metric": "health.up", "value": 1.0}]})
    for source in ("push:ci", "otlp:svc", "prometheus:prod", "mlflow:registry"):
        with pytest.raises(PushInvalid) as refused:
            batch_ingest(project_id=project.pk, body=body, source=source)
        assert [(d["index"], d["field"]) for d in refused.value.details] == [(0, "metric")]
    batch_ingest(project_id=project.pk, body=body, source="probe:api")
    batches_apply()
    assert list(MetricPoint.objects.values_list("metric", "source")) == [("health.up", "probe:api")]


@pytest.mark.django_db
def test_a_token_name_with_copy_characters_is_stored_as_it_is() -> None:
    """A batch's source goes into COPY's text format, where tab, newline and backslash mean something."""
    project = ProjectFactory()
    odd = source_label("push", "team\\ci\tnightly\nrun\r2")
    point = {"metric": "m", "value": 1.0, "labels": {"path": "C:\\x\ty"}}
    small = orjson.dumps({"points": [point] * 3})  # written by the request
    large = orjson.dumps({"points": [point] * (DIRECT_MAX_POINTS + 1)})  # through the outbox
    batch_ingest(project_id=project.pk, body=small, source=odd)
    batch_ingest(project_id=project.pk, body=large, source=odd)
    batch_ingest(project_id=project.pk, body=large, source="push:plain")
    assert batches_apply() == 2 * (DIRECT_MAX_POINTS + 1)  # both large batches in one COPY
    assert sorted(MetricPoint.objects.values_list("source", flat=True)) == sorted(
        [odd] * (3 + DIRECT_MAX_POINTS + 1) + ["push:plain"] * (DIRECT_MAX_POINTS + 1)
    )
    assert {p.labels["path"] for p in MetricPoint.objects.all()} == {"C:\\x\ty"}


@pytest.mark.django_db(transaction=True)
def test_the_migration_marks_existing_points_and_batches_push_legacy() -> None:
    before, after = [("telemetry", "0004_ingestbatch_failed_state")], [("telemetry", "0005_source")]
    project = ProjectFactory()
    executor = MigrationExecutor(connection)
    try:
        executor.migrate(before)
        # Values as parameters, not now() or gen_random_uuid(): the same SQL on SQLite (make test's default).
        now, batch_id = timezone.now(), uuid.uuid4()
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO telemetry_metricpoint (project_id, metric, ts, value, labels) "
                "VALUES (%s, 'accuracy', %s, 0.9, '{}')",
                [project.pk, now],
            )
            cursor.execute(
                "INSERT INTO telemetry_ingestbatch (id, project_id, body_sha256, accepted, state,"
                " received_at, attempts, error)"
                " VALUES (%s, %s, '', 1, 'pending', %s, 0, '')",
                [IngestBatch._meta.get_field("id").get_db_prep_value(batch_id, connection), project.pk, now],
            )
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(after)
    finally:
        MigrationExecutor(connection).migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
    assert list(MetricPoint.objects.values_list("source", flat=True)) == ["push:legacy"]
    assert list(IngestBatch.objects.values_list("source", flat=True)) == ["push:legacy"]
    with connection.cursor() as cursor:
        # The default was only for the rows already there: new points must say where they came from.
        columns = connection.introspection.get_table_description(cursor, "telemetry_metricpoint")
    assert next(column.default for column in columns if column.name == "source") is None


@pytest.mark.django_db
def test_many_batches_are_stored_at_once_each_with_its_source_or_none_at_all() -> None:
    """A probe cycle's batches (one per target) in one INSERT; an invalid one stores nothing."""
    project = ProjectFactory()
    body = orjson.dumps({"points": [{"metric": "health.up", "value": 1.0}]})
    refused = [(project.pk, "probe:api", body), (project.pk, "push:ci", body)]
    with pytest.raises(PushInvalid):
        batches_store(batches=refused, now=timezone.now())
    assert not IngestBatch.objects.exists()

    probed = [(project.pk, "probe:api", body), (project.pk, "probe:db", body)]
    assert batches_store(batches=probed, now=timezone.now()) == 2
    assert batches_apply() == 2
    assert sorted(MetricPoint.objects.values_list("source", flat=True)) == ["probe:api", "probe:db"]
