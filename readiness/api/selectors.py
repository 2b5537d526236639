"""Reads behind the API: projects with their latest decision and scorecard history (metric series:
readiness/telemetry/series.py)."""

from __future__ import annotations

from datetime import datetime

from django.db.models import OuterRef, QuerySet, Subquery

from readiness.projects.models import Project
from readiness.scoring.models import Scorecard


def with_latest_decision(projects: QuerySet[Project]) -> QuerySet[Project]:
    """Annotate ``latest_decision`` (of the newest stored scorecard, or None) in the same query, so a
    list costs the same number of queries for 3 projects or 3,000."""
    newest = Scorecard.objects.latest_for(OuterRef("pk"))
    return projects.annotate(latest_decision=Subquery(newest.values("decision")[:1]))


def latest_decision(*, project: Project) -> str | None:
    newest = Scorecard.objects.latest_for(project)
    return newest.values_list("decision", flat=True).first()


def scorecard_history(*, project: Project, since: datetime | None) -> QuerySet[Scorecard]:
    """Stored scorecards of a project, newest first; ``since`` keeps those computed at or after it."""
    scorecards = Scorecard.objects.latest_for(project)
    if since is not None:
        scorecards = scorecards.filter(computed_at__gte=since)
    return scorecards
