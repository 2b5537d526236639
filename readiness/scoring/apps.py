from __future__ import annotations

from django.apps import AppConfig


class ScoringConfig(AppConfig):
    name = "readiness.scoring"
    label = "scoring"
    verbose_name = "Scoring: criteria, templates and scorecards"

    def ready(self) -> None:
        # Telemetry announces new evidence rather than importing scoring (it is the lower layer).
        from readiness.scoring.requests import evidence_changed_receiver
        from readiness.telemetry.signals import project_evidence_changed

        project_evidence_changed.connect(evidence_changed_receiver, dispatch_uid="scoring.evaluation_request")
