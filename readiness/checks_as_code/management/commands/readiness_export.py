from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from readiness.checks_as_code.export import checks_export
from readiness.projects.models import Project


class Command(BaseCommand):
    help = (
        "Write projects as checks-as-code YAML: the users and teams they involve, and "
        "each project with all its criteria written out (those from templates included), its "
        "templates, health checks and channels. readiness_import accepts the output, and exporting "
        "again after importing it gives the same text."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", metavar="SLUG", help="export only this project (default: all)")
        parser.add_argument("--output", metavar="FILE", help="write to FILE instead of standard output")

    def handle(
        self, *args: Any, project: str | None = None, output: str | None = None, **options: Any
    ) -> None:
        try:
            text = checks_export(project_slug=project)
        except Project.DoesNotExist:
            raise CommandError(f"unknown project {project!r}") from None
        if output is None:
            self.stdout.write(text, ending="")
            return
        try:
            Path(output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"cannot write {output}: {exc.strerror or exc}") from None
        self.stderr.write(f"Wrote {output}.")
