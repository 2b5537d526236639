from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from readiness.projects.models import VALID_SCOPES, Project, ProjectToken
from readiness.projects.services import token_create, token_revoke


class Command(BaseCommand):
    help = (
        "Create, list and revoke project API tokens. "
        "A new token's secret is printed once, alone on the last line."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True, metavar="{create,list,revoke}")
        create = sub.add_parser("create", help="create a token and print its secret once")
        create.add_argument("project", help="project slug")
        create.add_argument(
            "--scopes",
            required=True,
            help=f"comma-separated scopes: {', '.join(sorted(VALID_SCOPES))}",
        )
        create.add_argument("--name", help="a name to tell tokens apart (default: cli-<timestamp>)")
        listing = sub.add_parser("list", help="list a project's tokens (never their secrets)")
        listing.add_argument("project", help="project slug")
        revoke = sub.add_parser("revoke", help="revoke a token by name")
        revoke.add_argument("project", help="project slug")
        revoke.add_argument("name", help="token name")

    def handle(self, *args: Any, action: str, project: str, **options: Any) -> None:
        try:
            item = Project.objects.get(slug=project)
        except Project.DoesNotExist:
            raise CommandError(f"unknown project {project!r}") from None
        getattr(self, f"handle_{action}")(item, **options)

    def handle_create(self, project: Project, *, scopes: str, name: str | None, **options: Any) -> None:
        wanted = [scope.strip() for scope in scopes.split(",") if scope.strip()]
        name = name or f"cli-{timezone.now():%Y%m%d-%H%M%S}"
        try:
            token, secret = token_create(project=project, name=name, scopes=wanted, actor_label="cli")
        except ValidationError as exc:
            raise CommandError(
                "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
            ) from None
        self.stdout.write(
            f"Created token {token.name!r} for {project.slug} with scopes {', '.join(token.scopes)}."
        )
        self.stdout.write("Copy the secret now; it is stored only as a hash and cannot be shown again:")
        self.stdout.write(secret)

    def handle_list(self, project: Project, **options: Any) -> None:
        tokens = ProjectToken.objects.filter(project=project).order_by("name")
        if not tokens:
            self.stdout.write(f"{project.slug} has no tokens.")
        for token in tokens:
            state = f"revoked {token.revoked_at:%Y-%m-%d}" if token.revoked_at else "active"
            used = f"last used {token.last_used_at:%Y-%m-%d %H:%M}" if token.last_used_at else "never used"
            self.stdout.write(f"{token.name}\t{token.hint}…\t{','.join(token.scopes)}\t{state}\t{used}")

    def handle_revoke(self, project: Project, *, name: str, **options: Any) -> None:
        token = ProjectToken.objects.filter(project=project, name=name).first()
        if token is None:
            raise CommandError(f"{project.slug} has no token named {name!r}")
        if not token_revoke(token=token, actor_label="cli"):
            raise CommandError(f"token {name!r} is already revoked")
        self.stdout.write(f"Revoked token {name!r} of {project.slug}.")
