from __future__ import annotations

from typing import Any

from django.apps import AppConfig


def _count_notification_failure(sender: object, *, channel: Any, failure: str, **kwargs: object) -> None:
    from readiness.observability.metrics import record_notification_failure

    record_notification_failure(channel=channel.kind, failure=failure)


class AlertsConfig(AppConfig):
    name = "readiness.alerts"
    label = "alerts"
    verbose_name = "Alerts: notification channels"

    def ready(self) -> None:
        # Sending knows nothing of Prometheus; the counter listens to the signal sending raises.
        from readiness.alerts.services import notification_failed

        notification_failed.connect(_count_notification_failure, dispatch_uid="count-notification-failure")
        # Scoring announces each stored scorecard rather than importing alerts (the higher layer).
        from readiness.alerts.services import scorecard_stored_receiver
        from readiness.scoring.signals import scorecard_stored

        scorecard_stored.connect(scorecard_stored_receiver, dispatch_uid="alerts.record-evaluation")
