"""The ingest backlog as a Prometheus gauge, read when /metrics is scraped (readiness/observability)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily

from readiness.telemetry.models import IngestBatch


class IngestBacklogCollector:
    """The batches accepted but not yet applied, read at scrape time with one indexed count: a
    gauge kept by the processes themselves would drift whenever one dies between its two updates."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        backlog = IngestBatch.objects.filter(state=IngestBatch.State.PENDING).count()
        yield GaugeMetricFamily(
            "readiness_ingest_backlog_batches",
            "Accepted metric batches not yet applied (a growing backlog means workers are missing).",
            value=backlog,
        )
