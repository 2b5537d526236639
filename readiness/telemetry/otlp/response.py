"""The answer to an accepted export: an ExportMetricsServiceResponse in the request's encoding.

OTLP/HTTP answers 200 for a whole or partial success; ``partial_success`` is set only when data
points were rejected, with their count and the first reasons (an exporter logs them).
"""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf import json_format
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceResponse

from readiness.telemetry.otlp.decode import Encoding
from readiness.telemetry.otlp.mapping import MappedExport


@dataclass(frozen=True)
class EncodedResponse:
    body: bytes
    content_type: str


def encode_response(*, encoding: Encoding, mapped: MappedExport) -> EncodedResponse:
    response = ExportMetricsServiceResponse()
    if mapped.rejected:
        response.partial_success.rejected_data_points = mapped.rejected
        response.partial_success.error_message = mapped.error_message
    if encoding is Encoding.JSON:
        # OTLP JSON: lowerCamelCase field names (protobuf's JSON mapping), integer enums.
        text = json_format.MessageToJson(response, indent=None, use_integers_for_enums=True)
        return EncodedResponse(body=text.encode(), content_type=Encoding.JSON.value)
    return EncodedResponse(body=response.SerializeToString(), content_type=Encoding.PROTOBUF.value)
