"""Workflows on projects and their API tokens; each writes the audit log."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from readiness.audit.services import audit_record, audit_snapshot
from readiness.projects.models import VALID_SCOPES, Project, ProjectToken, StageChange
from readiness.projects.vocabulary import Stage

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser


def project_create(
    *, project: Project, by: AbstractBaseUser | None = None, actor_label: str | None = None
) -> Project:
    """Save a new project and start its stage history, so the first stage has a start like any
    other (the portfolio counts time in stage from it)."""
    with transaction.atomic():
        project.save(force_insert=True)
        StageChange.objects.create(
            project=project,
            from_stage="",
            to_stage=project.stage,
            changed_at=project.created_at,
            changed_by=by,
        )
        audit_record(
            action="project.create",
            instance=project,
            actor=by,
            actor_label=actor_label,
            project=project,
            after=audit_snapshot(project),
        )
    return project


def project_set_stage(
    *, project: Project, stage: str, by: AbstractBaseUser | None, actor_label: str | None = None
) -> bool:
    """Move a project to another stage, recording the stage history. Returns whether it changed."""
    if stage not in Stage.values:
        raise ValidationError(
            {"stage": f"unknown stage {stage!r}; expected one of {', '.join(Stage.values)}"}
        )
    if project.stage == stage:
        return False
    before = project.stage
    now = timezone.now()
    with transaction.atomic():
        StageChange.objects.create(
            project=project, from_stage=before, to_stage=stage, changed_at=now, changed_by=by
        )
        Project.objects.filter(pk=project.pk).update(stage=stage, stage_changed_at=now)
        project.stage, project.stage_changed_at = stage, now
        audit_record(
            action="project.stage",
            instance=project,
            actor=by,
            actor_label=actor_label,
            project=project,
            before={"stage": before},
            after={"stage": stage},
        )
    return True


def token_create(
    *,
    project: Project,
    name: str,
    scopes: list[str],
    created_by: AbstractBaseUser | None = None,
    actor_label: str | None = None,
) -> tuple[ProjectToken, str]:
    """Create a project token; returns it with its secret, which is never stored nor shown again."""
    unknown = sorted(set(scopes) - VALID_SCOPES)
    if unknown or not scopes:
        raise ValidationError(
            {
                "scopes": f"unknown scope(s) {', '.join(unknown) or '(none given)'}; "
                f"expected some of {', '.join(sorted(VALID_SCOPES))}"
            }
        )
    if not name or len(name) > 100:
        raise ValidationError({"name": "a token name of 1 to 100 characters is required"})
    if ProjectToken.objects.filter(project=project, name=name).exists():
        raise ValidationError({"name": f"project {project.slug} already has a token named {name!r}"})
    secret = ProjectToken.new_secret()
    token = ProjectToken(project=project, name=name, scopes=sorted(set(scopes)), created_by=created_by)
    token.set_secret(secret)
    with transaction.atomic():
        token.save()
        # The audit entry records the token's name, hint and scopes, never its secret or hash.
        audit_record(
            action="token.create",
            instance=token,
            actor=created_by,
            actor_label=actor_label,
            project=project,
            after={"name": name, "hint": token.hint, "scopes": token.scopes},
        )
    return token, secret


def token_revoke(
    *, token: ProjectToken, by: AbstractBaseUser | None = None, actor_label: str | None = None
) -> bool:
    """Revoke a token; it is refused from then on. Returns False when it was already revoked."""
    with transaction.atomic():
        changed = ProjectToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        if changed:
            token.refresh_from_db(fields=["revoked_at"])
            audit_record(
                action="token.revoke",
                instance=token,
                actor=by,
                actor_label=actor_label,
                project=token.project,
                before={"revoked": False},
                after={"revoked": True},
            )
    return bool(changed)
