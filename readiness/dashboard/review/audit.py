"""The project's audit log as its members read it (PRODUCT.md §2: "readable by admins and the
project's members"): every recorded change, newest first, with what each changed.

Two queries a page whatever its length: the count and the page's entries (with their actors),
paged by ``common/paging.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from readiness.audit.models import AuditEntry
from readiness.dashboard.common.paging import pick_page
from readiness.projects.models import Project

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

PER_PAGE = 50
# A before/after value is shown up to this many characters: a criterion's description can be long.
VALUE_MAX = 160
# Bookkeeping fields every save touches: listing them in every entry would hide what changed.
UNINTERESTING = frozenset({"id", "updated_at", "project", "criterion", "position"})


def may_read_audit(*, project: Project, user: AbstractBaseUser | AnonymousUser) -> bool:
    """Admins and the project's team; leadership reads scorecards, not who-changed-what."""
    return bool(user.is_authenticated and (user.is_staff or project.is_member(user)))


@dataclass(frozen=True)
class FieldChange:
    field: str
    before: str | None  # None: the field did not exist before (a creation)
    after: str | None  # None: it does not exist after (a deletion)


@dataclass(frozen=True)
class AuditLine:
    at: datetime
    actor: str
    action: str
    object_type: str
    object_repr: str
    changes: list[FieldChange]


@dataclass(frozen=True)
class AuditPage:
    lines: list[AuditLine]
    number: int
    num_pages: int
    total: int
    message: str


def audit_page(*, project: Project, page: str | None) -> AuditPage:
    entries = AuditEntry.objects.filter(project=project).order_by("-at", "-id")
    shown, message = pick_page(entries, per_page=PER_PAGE, raw=page)
    lines = [
        AuditLine(
            at=entry.at,
            actor=entry.actor_label,
            action=entry.action,
            object_type=entry.object_type,
            object_repr=entry.object_repr,
            changes=field_changes(entry.before, entry.after),
        )
        for entry in shown.object_list
    ]
    paginator = shown.paginator
    return AuditPage(
        lines=lines,
        number=shown.number,
        num_pages=paginator.num_pages,
        total=paginator.count,
        message=message,
    )


def field_changes(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[FieldChange]:
    """The fields whose value differs between the two snapshots; for a creation or a deletion, the
    fields that hold something."""
    before, after = before or {}, after or {}
    changes = []
    for field in sorted(before.keys() | after.keys()):
        if field in UNINTERESTING:
            continue
        old, new = before.get(field), after.get(field)
        if old == new or (field not in before and _empty(new)) or (field not in after and _empty(old)):
            continue
        changes.append(
            FieldChange(
                field=field,
                before=_shown(old) if field in before else None,
                after=_shown(new) if field in after else None,
            )
        )
    return changes


def _empty(value: Any) -> bool:
    return value in (None, "", [], {}, False)


def _shown(value: Any) -> str:
    text = "—" if value is None or value == "" else str(value)
    return text if len(text) <= VALUE_MAX else text[: VALUE_MAX - 1] + "…"
