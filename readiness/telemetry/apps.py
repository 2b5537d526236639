from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _partitions_ahead(sender: AppConfig, **kwargs: Any) -> None:
    """Every migrate makes today's partition and the week ahead, so a fresh install (or a test
    database) stores points by day from the start, before the daily retention job first runs."""
    from django.utils import timezone

    from readiness.telemetry.partitions import partitions_ahead

    partitions_ahead(now=timezone.now())


class TelemetryConfig(AppConfig):
    name = "readiness.telemetry"
    label = "telemetry"
    verbose_name = "Telemetry: metrics and health checks"

    def ready(self) -> None:
        # /metrics belongs to observability, the lowest layer; the backlog gauge counts telemetry's rows.
        from readiness.observability.metrics import scrape_time_collector_add
        from readiness.telemetry.backlog import IngestBacklogCollector

        scrape_time_collector_add(IngestBacklogCollector())
        post_migrate.connect(_partitions_ahead, sender=self)
