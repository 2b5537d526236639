"""The audit log in the admin console, and the read-only base every history in the console uses."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString

from readiness.audit.models import AuditEntry


class ReadOnlyModelAdmin(admin.ModelAdmin):
    """History is shown, never written from the console: no add, change or delete, for anyone.

    The rows are written by services (the audit log, scorecards, sign-offs); editing or deleting one here
    would rewrite what happened.
    """

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def pretty_json(value: Any) -> SafeString:
    if value is None:
        return format_html("<span>{}</span>", "—")
    return format_html(
        '<pre style="margin:0">{}</pre>',
        json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False),
    )


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyModelAdmin):
    list_display = ("at", "actor_label", "action", "object_repr", "project")
    list_filter = ("action", "project")
    search_fields = ("action", "actor_label", "object_repr", "object_id", "project__slug")
    list_select_related = ("project",)
    date_hierarchy = "at"
    # The log only grows; counting the whole table on every filtered page is wasted work.
    show_full_result_count = False
    fields = (
        "at",
        "actor",
        "actor_label",
        "action",
        "project",
        "object_type",
        "object_id",
        "object_repr",
        "before_pretty",
        "after_pretty",
    )
    readonly_fields = ("before_pretty", "after_pretty")

    @admin.display(description="before")
    def before_pretty(self, obj: AuditEntry) -> SafeString:
        return pretty_json(obj.before)

    @admin.display(description="after")
    def after_pretty(self, obj: AuditEntry) -> SafeString:
        return pretty_json(obj.after)
