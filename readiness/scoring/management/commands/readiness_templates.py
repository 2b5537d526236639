from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from readiness.scoring.templates import TemplateDataError, template_load_builtin


class Command(BaseCommand):
    help = (
        "Refresh the built-in templates (baseline, ml_test_score, eu_ai_act_high_risk) from their "
        "data files: create missing ones, restore edited ones (with a new version), leave the rest "
        "alone. Prints one line per template. Projects keep their criteria; re-apply a template "
        "to a project to add what it gained."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--directory",
            type=Path,
            help="read template files (*.yaml) from this folder instead of the built-in data files",
        )

    def handle(self, *args: Any, directory: Path | None = None, **options: Any) -> None:
        if directory is not None and not directory.is_dir():
            raise CommandError(f"{directory}: not a directory")
        try:
            reports = template_load_builtin(directory=directory)
        except TemplateDataError as exc:
            raise CommandError(f"bad template data file: {exc}") from None
        for report in reports:
            style = self.style.SUCCESS if report.status != "unchanged" else str
            self.stdout.write(style(str(report)))
