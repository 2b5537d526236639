"""Bodies made by the real OpenTelemetry Python SDK and its OTLP encoder: what exporters send."""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.metrics import Meter
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.metrics.view import View
from opentelemetry.sdk.resources import Resource

from readiness.telemetry.otlp import MappedExport, SeriesMemory, decode_export, map_export

# The four ways an exporter may send one export: OTLP's two encodings, each plain or gzipped.
BODY_FORMS = ("protobuf", "json", "protobuf+gzip", "json+gzip")


@dataclass
class Instrumented:
    provider: MeterProvider
    reader: InMemoryMetricReader
    meter: Meter

    def export(self) -> ExportMetricsServiceRequest:
        """One collection, encoded as the SDK's OTLP exporters encode it."""
        return encode_metrics(self.reader.get_metrics_data())


def instrumented(
    *, service: str = "fraud-api", resource: Resource | None = None, views: Sequence[View] = ()
) -> Instrumented:
    # InMemoryMetricReader's default temporality is cumulative for every instrument, the SDK default.
    reader = InMemoryMetricReader()
    provider = MeterProvider(
        metric_readers=[reader],
        resource=resource or Resource.create({"service.name": service}),
        views=list(views),
    )
    return Instrumented(provider=provider, reader=reader, meter=provider.get_meter("fraud.scoring", "1.4.0"))


def body_of(request: ExportMetricsServiceRequest, form: str) -> tuple[bytes, str, str | None]:
    """(body, Content-Type, Content-Encoding) of ``request`` sent in ``form``."""
    if form.startswith("json"):
        # OTLP's JSON encoding: protobuf's JSON mapping with enums as integers.
        body = json_format.MessageToJson(request, use_integers_for_enums=True).encode()
        content_type = "application/json; charset=utf-8"
    else:
        body, content_type = request.SerializeToString(), "application/x-protobuf"
    if form.endswith("+gzip"):
        return gzip.compress(body), content_type, "gzip"
    return body, content_type, None


def receive(
    request: ExportMetricsServiceRequest, *, form: str, memory: SeriesMemory, now: datetime | None = None
) -> MappedExport:
    """Send ``request`` through decoding and mapping, as the receiver's view will."""
    body, content_type, content_encoding = body_of(request, form)
    decoded = decode_export(body=body, content_type=content_type, content_encoding=content_encoding)
    return map_export(request=decoded.request, memory=memory, now=now or datetime.now(UTC))


def by_metric(mapped: MappedExport) -> dict[str, list[float]]:
    values: dict[str, list[float]] = {}
    for point in mapped.points:
        values.setdefault(point.metric, []).append(point.value)
    return values
