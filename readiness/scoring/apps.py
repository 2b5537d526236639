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

        # A project deleted takes its blockers and weekly decisions with it: the tallies over every
        # project must let go of them in the same transaction (Django sends this inside it).
        from django.db.models.signals import pre_delete

        from readiness.projects.models import Project
        from readiness.scoring.standings import project_deleted_receiver

        pre_delete.connect(project_deleted_receiver, sender=Project, dispatch_uid="scoring.tallies_forget")
