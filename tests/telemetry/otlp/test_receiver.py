"""``POST /api/v1/otlp/v1/metrics`` in process: encodings, refusals, partial success, the series memory.

The exporter's side of the wire is the generated OTLP classes (tests/telemetry/otlp/exports.py) and the SDK's
own encoder (tests/telemetry/otlp/sdk.py); the receiver's side is the whole Django stack down to PostgreSQL.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import time_machine
from django.test import Client
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.metrics.v1.metrics_pb2 import AGGREGATION_TEMPORALITY_CUMULATIVE

from readiness.projects.services import token_create
from readiness.security.rates import Rate
from readiness.telemetry.models import IngestBatch, MetricPoint, OtlpSeries
from readiness.telemetry.push_rules import MAX_BODY_BYTES
from readiness.telemetry.services import batches_apply
from tests.conftest import Cast
from tests.telemetry.otlp.exports import NOW, NOW_NANOS, explicit_point, export, gauge, histogram, number
from tests.telemetry.otlp.sdk import body_of

URL = "/api/v1/otlp/v1/metrics"
SECOND = 10**9


@pytest.fixture(autouse=True)
def frozen() -> Iterator[None]:
    # The exports carry NOW: the receiver's clock must agree (future and age bounds).
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def secret(cast: Cast) -> str:
    return token_create(project=cast.project, name="fraud-exporter", scopes=["metrics:write"])[1]


def send(
    client: Client,
    body: bytes,
    secret: str | None,
    *,
    content_type: str = "application/x-protobuf",
    encoding: str | None = None,
) -> Any:
    headers = {"authorization": f"Bearer {secret}"} if secret is not None else {}
    if encoding is not None:
        headers["content-encoding"] = encoding
    return client.post(URL, body, content_type=content_type, headers=headers)


def export_as(client: Client, request: ExportMetricsServiceRequest, secret: str, form: str) -> Any:
    body, content_type, encoding = body_of(request, form)
    return send(client, body, secret, content_type=content_type, encoding=encoding)


def stored() -> list[tuple[str, float, dict[str, str]]]:
    batches_apply()
    return sorted(MetricPoint.objects.values_list("metric", "value", "labels"), key=lambda row: row[:2])


def protobuf_answer(response: Any) -> ExportMetricsServiceResponse:
    assert response["Content-Type"] == "application/x-protobuf"
    answer = ExportMetricsServiceResponse()
    answer.ParseFromString(response.content)
    return answer


def test_a_protobuf_export_is_stored_before_the_answer_and_answered_in_protobuf(
    client: Client, cast: Cast, secret: str
) -> None:
    request = export(gauge("Model.Accuracy", number(0.931, labels={"model_version": "7"})))

    response = export_as(client, request, secret, "protobuf")

    assert response.status_code == 200
    assert not protobuf_answer(response).HasField("partial_success")
    # A small export is written by the request itself: stored before the 200, the worker only evaluates.
    batch = IngestBatch.objects.get()
    assert batch.state == "done" and batch.accepted == 1 and batch.project == cast.project
    assert batch.source == "otlp:fraud-exporter"
    assert MetricPoint.objects.count() == 1
    assert stored() == [("model.accuracy", 0.931, {"model_version": "7", "service": "fraud-api"})]
    assert MetricPoint.objects.get().source == "otlp:fraud-exporter"


@pytest.mark.parametrize("form", ["json", "json+gzip", "protobuf+gzip"])
def test_json_and_gzip_bodies_are_stored_alike(client: Client, cast: Cast, secret: str, form: str) -> None:
    request = export(gauge("latency_ms", number(182.5), number(99, at=NOW_NANOS - SECOND)))

    response = export_as(client, request, secret, form)

    assert response.status_code == 200
    if form.startswith("json"):
        assert response["Content-Type"] == "application/json"
        assert response.json() == {}  # an ExportMetricsServiceResponse without partial_success
    else:
        assert not protobuf_answer(response).HasField("partial_success")
    assert stored() == [
        ("latency_ms", 99.0, {"service": "fraud-api"}),
        ("latency_ms", 182.5, {"service": "fraud-api"}),
    ]


@pytest.mark.parametrize(
    ("body", "content_type", "encoding"),
    [
        (b"\xff\xff\xff", "application/x-protobuf", None),
        (b'{"resourceMetrics": 7}', "application/json", None),
        (b"not json", "application/json", None),
        (gzip.compress(b"\x0a\x05")[:-4], "application/x-protobuf", "gzip"),  # truncated gzip
    ],
)
def test_an_undecodable_body_is_a_400_and_stores_nothing(
    client: Client, cast: Cast, secret: str, body: bytes, content_type: str, encoding: str | None
) -> None:
    response = send(client, body, secret, content_type=content_type, encoding=encoding)

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "undecodable" and error["message"] and error["details"] == []
    assert not IngestBatch.objects.exists()


def test_one_bad_data_point_among_good_ones_is_rejected_alone(
    client: Client, cast: Cast, secret: str
) -> None:
    request = export(gauge("accuracy", number(0.9), number(float("nan")), number(0.8, at=NOW_NANOS - SECOND)))

    response = export_as(client, request, secret, "json")

    assert response.status_code == 200
    partial = response.json()["partialSuccess"]
    assert partial["rejectedDataPoints"] == "1"  # int64 is a string in OTLP JSON
    assert "gauge.data_points[1]" in partial["errorMessage"]
    assert "not a finite number" in partial["errorMessage"]
    assert [(metric, value) for metric, value, _ in stored()] == [("accuracy", 0.8), ("accuracy", 0.9)]


def test_a_health_data_point_refuses_the_export_naming_the_point_and_field(
    client: Client, cast: Cast, secret: str
) -> None:
    request = export(gauge("latency_ms", number(1.0)), gauge("health.up", number(1)))

    response = export_as(client, request, secret, "protobuf")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "reserved_metric"
    assert error["details"] == [
        {
            "index": 1,
            "field": "resource_metrics[0].scope_metrics[0].metrics[1].name",
            "message": error["message"],
        }
    ]
    assert "'health.up'" in error["message"] and "reserved for probes" in error["message"]
    assert not IngestBatch.objects.exists()


def test_a_body_over_5_mib_is_a_413_compressed_or_decoded(client: Client, cast: Cast, secret: str) -> None:
    too_long = send(client, b"\x00" * (MAX_BODY_BYTES + 1), secret)
    # A few kilobytes that inflate past the limit: refused once the decoded limit is passed.
    bomb = gzip.compress(b"\x00" * (MAX_BODY_BYTES + 1))
    inflated = send(client, bomb, secret, encoding="gzip")

    assert len(bomb) < 10_000
    assert (too_long.status_code, inflated.status_code) == (413, 413)
    assert too_long.json()["error"]["code"] == inflated.json()["error"]["code"] == "too_large"
    assert not IngestBatch.objects.exists()


@pytest.mark.parametrize(
    ("content_type", "encoding"),
    [("text/plain", None), ("application/x-protobuf", "br"), ("application/json; charset=latin-1", None)],
)
def test_an_unsupported_media_type_or_coding_is_a_415(
    client: Client, cast: Cast, secret: str, content_type: str, encoding: str | None
) -> None:
    response = send(client, b"", secret, content_type=content_type, encoding=encoding)

    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"


def test_no_token_is_a_401_and_a_token_without_metrics_write_a_403(client: Client, cast: Cast) -> None:
    reader = token_create(project=cast.project, name="reader", scopes=["scorecard:read"])[1]
    body = export(gauge("accuracy", number(0.9))).SerializeToString()

    anonymous = send(client, body, None)
    unknown = send(client, body, "rdy_not-a-token")
    forbidden = send(client, body, reader)

    assert (anonymous.status_code, unknown.status_code, forbidden.status_code) == (401, 401, 403)
    assert anonymous["WWW-Authenticate"] == "Bearer"
    assert forbidden.json()["error"]["code"] == "forbidden"
    assert not IngestBatch.objects.exists()


def test_a_token_over_its_rate_limit_gets_429_with_retry_after_as_pushes_do(
    client: Client, cast: Cast, secret: str, settings: Any
) -> None:
    settings.READINESS_RATE_LIMIT_REDIS_URL = ""  # this process's own count: no Redis shared with others
    settings.READINESS_API_RATE_LIMIT = Rate(requests=2, seconds=60)
    body = export(gauge("accuracy", number(0.9))).SerializeToString()

    statuses = [send(client, body, secret).status_code for _ in range(2)]
    refused = send(client, body, secret)

    assert statuses == [200, 200]
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) > 0
    assert refused.json()["error"]["code"] == "rate_limited"
    assert IngestBatch.objects.count() == 2


def cumulative(counts: tuple[int, ...], *, at: int, total: float) -> ExportMetricsServiceRequest:
    point = explicit_point((10.0, 100.0), counts, start=NOW_NANOS - 600 * SECOND, at=at, total=total)
    return export(histogram("latency_ms", point, temporality=AGGREGATION_TEMPORALITY_CUMULATIVE))


def test_a_cumulative_histogram_maps_the_difference_from_the_stored_series_state(
    client: Client, cast: Cast, secret: str
) -> None:
    first = cumulative((1, 2, 0), at=NOW_NANOS - 120 * SECOND, total=60.0)
    second = cumulative((1, 5, 1), at=NOW_NANOS - 60 * SECOND, total=400.0)

    assert export_as(client, first, secret, "protobuf").status_code == 200
    assert export_as(client, second, secret, "protobuf").status_code == 200

    counts = [v for metric, v, _ in stored() if metric == "latency_ms.count"]
    sums = [v for metric, v, _ in stored() if metric == "latency_ms.sum"]
    # The first export maps its whole span (it has a start time); the second only what it added.
    assert sorted(counts) == [3.0, 4.0] and sorted(sums) == [60.0, 340.0]
    (series,) = OtlpSeries.objects.filter(project=cast.project)
    assert series.state["count"] == 7 and series.state["time_unix_nano"] == NOW_NANOS - 60 * SECOND


def test_a_refused_export_leaves_the_series_memory_as_it_was(client: Client, cast: Cast, secret: str) -> None:
    first = cumulative((1, 2, 0), at=NOW_NANOS - 120 * SECOND, total=60.0)
    assert export_as(client, first, secret, "protobuf").status_code == 200
    refused = cumulative((1, 5, 1), at=NOW_NANOS - 60 * SECOND, total=400.0)
    refused.resource_metrics[0].scope_metrics[0].metrics.append(gauge("health.up", number(1)))

    assert export_as(client, refused, secret, "protobuf").status_code == 400

    (series,) = OtlpSeries.objects.filter(project=cast.project)
    assert series.state["count"] == 3
    assert IngestBatch.objects.count() == 1


def test_an_export_of_only_rejected_points_answers_200_and_stores_no_batch(
    client: Client, cast: Cast, secret: str
) -> None:
    response = export_as(client, export(gauge("accuracy", number(float("inf")))), secret, "json")

    assert response.status_code == 200
    assert orjson.loads(response.content)["partialSuccess"]["rejectedDataPoints"] == "1"
    assert not IngestBatch.objects.exists()
