from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from readiness.projects.models import Project
from readiness.scoring.services import scorecard_refresh


class Command(BaseCommand):
    help = "Evaluate a project now (or every active project) and store a scorecard when results changed."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("project", nargs="?", help="project slug; all active projects when omitted")

    def handle(self, *args: Any, project: str | None = None, **options: Any) -> None:
        if project:
            projects = list(Project.objects.filter(slug=project))
            if not projects:
                raise CommandError(f"unknown project {project!r}", returncode=2)
        else:
            projects = list(Project.objects.active().order_by("slug"))
        total = len(projects)
        for n, item in enumerate(projects, start=1):
            scorecard = scorecard_refresh(project=item)
            blockers = len(scorecard.payload.get("blockers", []))
            self.stdout.write(
                f"[{n}/{total}] {item.slug}: {scorecard.decision} for {scorecard.target}"
                + (f" ({blockers} blocker{'s' if blockers != 1 else ''})" if blockers else "")
            )
        self.stdout.write(self.style.SUCCESS(f"Evaluated {total} project{'s' if total != 1 else ''}."))
