"""``readiness_source test PROJECT NAME`` and ``readiness_source run PROJECT NAME`` (PRODUCT.md §8)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from readiness.projects.models import Project
from readiness.telemetry.models import MetricSource
from readiness.telemetry.pulls import pull_summary, source_read, source_run


class Command(BaseCommand):
    help = (
        "Pull a project's metric source once: `test` shows what it would store and stores nothing; "
        "`run` stores it now, whatever its schedule. Exit 1 when the source fails."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["test", "run"], help="test (store nothing) or run (store)")
        parser.add_argument("project", help="project slug")
        parser.add_argument("name", help="the source's name")

    def handle(self, *args: Any, action: str, project: str, name: str, **options: Any) -> None:
        source = (
            MetricSource.objects.filter(project__slug=project, name=name).select_related("project").first()
        )
        if source is None:
            if not Project.objects.filter(slug=project).exists():
                raise CommandError(f"unknown project {project!r}")
            known = ", ".join(
                MetricSource.objects.filter(project__slug=project).values_list("name", flat=True)
            )
            raise CommandError(
                f"{project} has no metric source named {name!r} (its sources: {known or 'none'})"
            )
        self.stdout.write(f"{source.label} ({source.url})")
        if action == "test":
            result = source_read(source, now=timezone.now())
            lines = pull_summary(result)
        else:
            result, stored = source_run(source=source)
            lines = pull_summary(result, stored=stored)
        for line in lines:
            self.stdout.write(line)
        if result.errors:
            raise CommandError(f"source {source.name} failed: {result.error}")
