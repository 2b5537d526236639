from __future__ import annotations

from django.apps import AppConfig


class TelemetryConfig(AppConfig):
    name = "readiness.telemetry"
    label = "telemetry"
    verbose_name = "Telemetry: metrics and health checks"

    def ready(self) -> None:
        # /metrics belongs to observability, the lowest layer; the backlog gauge counts telemetry's rows.
        from readiness.observability.metrics import scrape_time_collector_add
        from readiness.telemetry.backlog import IngestBacklogCollector

        scrape_time_collector_add(IngestBacklogCollector())
