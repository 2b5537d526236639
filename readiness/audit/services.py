"""Writing the audit log. Every service that changes an audited object calls ``audit_record``."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from django.core.serializers.json import DjangoJSONEncoder
from django.forms.models import model_to_dict

from readiness.audit.models import AuditEntry

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser
    from django.db.models import Model

    from readiness.projects.models import Project


def audit_snapshot(instance: Model | None) -> dict[str, Any] | None:
    """A JSON-safe picture of a model instance for the before/after columns."""
    if instance is None:
        return None
    data = model_to_dict(instance)
    # Round-trip through Django's encoder so dates, decimals and UUIDs become strings.
    return json.loads(json.dumps(data, cls=DjangoJSONEncoder, default=str))


def audit_record(
    *,
    action: str,
    instance: Model,
    actor: AbstractBaseUser | None = None,
    actor_label: str | None = None,
    project: Project | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEntry:
    label = actor_label or (actor.get_username() if actor is not None else "system")
    return AuditEntry.objects.create(
        actor=actor if actor is not None and actor.pk else None,
        actor_label=label,
        project=project,
        action=action,
        object_type=instance._meta.label_lower,
        object_id=str(instance.pk or ""),
        object_repr=str(instance)[:200],
        before=before,
        after=after,
    )
