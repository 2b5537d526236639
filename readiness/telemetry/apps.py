from __future__ import annotations

from django.apps import AppConfig


class TelemetryConfig(AppConfig):
    name = "readiness.telemetry"
    label = "telemetry"
    verbose_name = "Telemetry: metrics and health checks"
