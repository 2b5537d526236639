"""Celery beat's scheduler: the periodic jobs of ``CELERY_BEAT_SCHEDULE`` (settings), stored with
django-celery-beat's database scheduler so admins see and tune them in the admin console.

django-celery-beat's own scheduler copies the code's entries over the stored ones every time beat
starts (``update_or_create``), so an interval an admin tuned would silently snap back at the next
deploy. Here the code only provides defaults: an entry missing from the database is created from the
code; a stored entry keeps what the admin set (interval, expiry, enabled), and only its task name follows
the code. Deleting a periodic task in the console brings back the code's default at the next start.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django_celery_beat.models import PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler, ModelEntry

# What a PeriodicTask row can hold of an entry's options. Anything else (time limits, say) would be
# dropped silently by the database scheduler, so it is refused: time limits belong on the task.
STORED_OPTIONS = {"queue", "exchange", "routing_key", "priority", "headers", "expires", "expire_seconds"}


def periodic_task_fields(name: str, entry: Mapping[str, Any]) -> dict[str, Any]:
    """A ``CELERY_BEAT_SCHEDULE`` entry as the fields of a PeriodicTask row."""
    unknown = set(entry) - {"task", "schedule", "args", "kwargs", "options"}
    options = dict(entry.get("options") or {})
    unknown |= set(options) - STORED_OPTIONS
    if unknown or "task" not in entry or "schedule" not in entry:
        raise ImproperlyConfigured(
            f"CELERY_BEAT_SCHEDULE[{name!r}]: needs task and schedule; cannot store {sorted(unknown)}"
        )
    # Celery's "expires" (seconds) is django-celery-beat's expire_seconds: a tick still queued when the
    # next one is due is dropped instead of piling up behind a busy worker.
    expires = options.pop("expires", None)
    expire_seconds = options.pop("expire_seconds", expires)
    if expire_seconds is not None and not isinstance(expire_seconds, int | float):
        raise ImproperlyConfigured(f"CELERY_BEAT_SCHEDULE[{name!r}]: expires must be a number of seconds")
    model_schedule, model_field = ModelEntry.to_model_schedule(entry["schedule"])
    return {
        "task": entry["task"],
        model_field: model_schedule,
        "args": json.dumps(list(entry.get("args") or [])),
        "kwargs": json.dumps(dict(entry.get("kwargs") or {})),
        "expire_seconds": int(expire_seconds) if expire_seconds is not None else None,
        "headers": json.dumps(options.pop("headers", None) or {}),
        **options,
    }


def beat_schedule_install(schedule: Mapping[str, Mapping[str, Any]]) -> list[PeriodicTask]:
    """Create the PeriodicTask of every entry the database lacks; keep the admin's edits of the others
    (their task name follows the code). Returns the rows of every entry, in the schedule's order."""
    rows: list[PeriodicTask] = []
    with transaction.atomic():
        for name, entry in schedule.items():
            fields = periodic_task_fields(name, entry)
            row, created = PeriodicTask.objects.get_or_create(name=name, defaults=fields)
            if not created and row.task != fields["task"]:
                row.task = fields["task"]
                row.save(update_fields=["task"])
            rows.append(row)
    return rows


class CodeDefaultsScheduler(DatabaseScheduler):
    """The database scheduler, seeded from the code's schedule without overwriting what admins tuned.

    Edits made in the console while beat runs are picked up as django-celery-beat always does (it
    watches its change counter every few seconds)."""

    def setup_schedule(self) -> None:
        self.install_default_entries(self.schedule)
        rows = beat_schedule_install(self.app.conf.beat_schedule)
        self.schedule.update({row.name: self.Entry(row, app=self.app) for row in rows if row.enabled})
