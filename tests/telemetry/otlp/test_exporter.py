"""The SDK's real OTLP/HTTP exporter, over HTTP, against a receiver made of this package.

The receiver here is a plain ``http.server`` on a free port doing what the coming view will do:
decode, map, answer. It shows the exporter's own request (headers, gzip) decodes, and that the
exporter takes our answers as OTLP: 200 with or without partial success, 400 for a refused export.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics.export import MetricExportResult

from readiness.telemetry.otlp import (
    ExportRefused,
    InMemorySeriesMemory,
    MappedExport,
    decode_export,
    encode_response,
    map_export,
)
from tests.telemetry.otlp.sdk import by_metric, instrumented


@dataclass
class Receiver:
    url: str
    memory: InMemorySeriesMemory = field(default_factory=InMemorySeriesMemory)
    headers: list[dict[str, str]] = field(default_factory=list)
    mapped: list[MappedExport] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.headers.append({name.lower(): value for name, value in self.headers.items()})
            try:
                decoded = decode_export(
                    body=body,
                    content_type=self.headers.get("Content-Type"),
                    content_encoding=self.headers.get("Content-Encoding"),
                )
                mapped = map_export(request=decoded.request, memory=state.memory, now=datetime.now(UTC))
            except ExportRefused as refused:
                self.answer(refused.status, refused.message.encode(), "text/plain")
                return
            state.mapped.append(mapped)
            answer = encode_response(encoding=decoded.encoding, mapped=mapped)
            self.answer(200, answer.body, answer.content_type)

        def answer(self, status: int, body: bytes, content_type: str) -> None:
            state.statuses.append(status)
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # the test asserts on what it records instead

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/api/v1/otlp/v1/metrics"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def test_the_sdk_exporter_s_gzipped_export_is_received_and_answered(receiver: Receiver) -> None:
    sdk = instrumented(service="fraud-api")
    exporter = OTLPMetricExporter(endpoint=receiver.url, compression=Compression.Gzip, timeout=10)
    latency = sdk.meter.create_histogram("latency_ms")
    for value in (12.0, 30.0, 80.0):
        latency.record(value, {"route": "/score"})
    sdk.meter.create_counter("predictions").add(3)

    result = exporter.export(sdk.reader.get_metrics_data())

    assert result is MetricExportResult.SUCCESS
    (headers,) = receiver.headers
    assert headers["content-type"] == "application/x-protobuf"
    assert headers["content-encoding"] == "gzip"
    values = by_metric(receiver.mapped[0])
    assert values["latency_ms.count"] == [3]
    assert values["latency_ms.sum"] == [122.0]
    assert values["predictions"] == [3]
    assert receiver.mapped[0].rejected == 0


def test_the_exporter_takes_a_partial_success_as_success(receiver: Receiver) -> None:
    sdk = instrumented()
    exporter = OTLPMetricExporter(endpoint=receiver.url, timeout=10)
    # The SDK takes names up to 255 characters; a push name has at most 100.
    sdk.meter.create_gauge("r" * 120).set(0.5)
    sdk.meter.create_gauge("accuracy").set(0.93)

    result = exporter.export(sdk.reader.get_metrics_data())

    assert result is MetricExportResult.SUCCESS
    assert receiver.statuses == [200]
    assert receiver.mapped[0].rejected == 1
    assert by_metric(receiver.mapped[0]) == {"accuracy": [0.93]}


def test_an_export_with_a_reserved_name_is_refused_and_the_exporter_does_not_retry(
    receiver: Receiver,
) -> None:
    sdk = instrumented()
    exporter = OTLPMetricExporter(endpoint=receiver.url, timeout=10)
    sdk.meter.create_gauge("health.up").set(1)

    result = exporter.export(sdk.reader.get_metrics_data())

    assert result is MetricExportResult.FAILURE
    assert receiver.statuses == [400]  # 400 is not retryable in OTLP/HTTP: one request only
