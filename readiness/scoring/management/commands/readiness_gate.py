from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from readiness.projects.models import Project
from readiness.scoring.services import scorecard_compute, scorecard_for_gate

# Exit codes a pipeline can tell apart: "not ready" (1) is not "misconfigured" (2).
EXIT_GO, EXIT_NO_GO, EXIT_ERROR = 0, 1, 2


class Command(BaseCommand):
    help = (
        "The deploy gate: print the decision and blockers of a project for a target stage. "
        "Exit 0 on go, 1 on no-go, 2 on an error (unknown project, bad arguments)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("project", help="project slug")
        parser.add_argument(
            "--target",
            choices=["pilot", "production"],
            help="target stage (default: the stage after the project's current one)",
        )

    def handle(self, *args: Any, project: str, target: str | None = None, **options: Any) -> None:
        try:
            item = Project.objects.get(slug=project)
        except Project.DoesNotExist:
            raise CommandError(f"unknown project {project!r}", returncode=EXIT_ERROR) from None
        try:
            if target is None:
                # The API gate's rule: the latest scorecard while current, else evaluated afresh.
                payload = scorecard_for_gate(project=item).payload
            else:
                payload = scorecard_compute(project=item, target=target).to_json()
        except ValidationError as exc:
            raise CommandError(str(exc), returncode=EXIT_ERROR) from None
        decision = payload["decision"]
        style = self.style.SUCCESS if decision == "go" else self.style.ERROR
        self.stdout.write(style(f"{item.slug}: {decision.upper().replace('_', '-')} for {payload['target']}"))
        for blocker in payload["blockers"]:
            where = blocker["dimension"] or "project"
            what = f"{where}/{blocker['criterion']}" if blocker["criterion"] else where
            owner = f" (owner: {blocker['owner']})" if blocker["owner"] else ""
            self.stdout.write(f"  - {what}: {blocker['status']}: {blocker['reason']}{owner}")
        if decision != "go":
            raise SystemExit(EXIT_NO_GO)
