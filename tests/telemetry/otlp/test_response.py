"""The answer to an export: ExportMetricsServiceResponse in the request's encoding, partial success."""

from __future__ import annotations

import json
import math

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceResponse

from readiness.telemetry.otlp import Encoding, InMemorySeriesMemory, encode_response, map_export
from tests.telemetry.otlp.exports import NOW, export, gauge, number


def test_a_whole_success_is_an_empty_response_in_either_encoding() -> None:
    mapped = map_export(request=export(gauge("ratio", number(0.5))), memory=InMemorySeriesMemory(), now=NOW)

    protobuf = encode_response(encoding=Encoding.PROTOBUF, mapped=mapped)
    as_json = encode_response(encoding=Encoding.JSON, mapped=mapped)

    assert (protobuf.body, protobuf.content_type) == (b"", "application/x-protobuf")
    assert (json.loads(as_json.body), as_json.content_type) == ({}, "application/json")


def test_rejected_data_points_are_reported_as_partial_success_in_protobuf() -> None:
    request = export(gauge("ratio", number(math.nan), number(0.5), number(math.inf)))
    mapped = map_export(request=request, memory=InMemorySeriesMemory(), now=NOW)

    encoded = encode_response(encoding=Encoding.PROTOBUF, mapped=mapped)

    response = ExportMetricsServiceResponse.FromString(encoded.body)
    assert response.partial_success.rejected_data_points == 2
    assert response.partial_success.error_message == mapped.error_message
    assert "gauge.data_points[0]" in response.partial_success.error_message


def test_rejected_data_points_are_reported_in_otlp_json_with_camel_case_fields() -> None:
    mapped = map_export(
        request=export(gauge("ratio", number(math.nan))), memory=InMemorySeriesMemory(), now=NOW
    )

    encoded = encode_response(encoding=Encoding.JSON, mapped=mapped)

    document = json.loads(encoded.body)
    # int64 as a string, as protobuf's JSON mapping writes it (OTLP JSON receivers read both).
    assert document == {
        "partialSuccess": {"rejectedDataPoints": "1", "errorMessage": mapped.error_message},
    }
