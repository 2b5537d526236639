from __future__ import annotations

from django.apps import AppConfig


class ScoringConfig(AppConfig):
    name = "readiness.scoring"
    label = "scoring"
    verbose_name = "Scoring: criteria, templates and scorecards"
