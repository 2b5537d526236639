"""Notifications in the admin console: channels (editable, with their last error), and the events and
deliveries they produced (read-only history, with every attempt)."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest
from django.utils.text import Truncator

from readiness.alerts.models import Channel, Delivery, DeliveryAttempt, Event


class EmailListField(forms.CharField):
    """Recipients typed as "a@example.com, b@example.com", stored as a JSON list. The addresses are
    judged by ``Channel.clean``, the one place that knows a channel's rules."""

    def prepare_value(self, value: Any) -> Any:
        return ", ".join(value) if isinstance(value, list) else value

    def to_python(self, value: Any) -> list[str]:
        if isinstance(value, list):
            return value
        return [part for part in re.split(r"[,\s]+", value or "") if part]

    def has_changed(self, initial: Any, data: Any) -> bool:
        # A blank new row starts with no recipients, not an empty string: unchanged, so skipped.
        return self.to_python(data) != (initial or [])


class ChannelForm(forms.ModelForm):
    to = EmailListField(
        required=False,
        label="Recipients",
        help_text="Email channels: addresses separated by commas.",
        widget=forms.TextInput(attrs={"size": 60}),
    )

    class Meta:
        model = Channel
        fields = ("kind", "url", "to", "digest", "enabled")


class ChannelInline(admin.TabularInline):
    model = Channel
    form = ChannelForm
    fields = ("kind", "url", "to", "digest", "enabled", "last_error")
    readonly_fields = ("last_error",)
    extra = 0
    show_change_link = True


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    form = ChannelForm
    list_display = ("project", "kind", "target", "digest", "enabled", "last_error_short", "last_error_at")
    list_filter = ("kind", "enabled", "digest", "project")
    search_fields = ("url", "to", "project__slug", "last_error")
    list_select_related = ("project",)
    autocomplete_fields = ("project",)
    fields = ("project", "kind", "url", "to", "digest", "enabled", "last_error", "last_error_at")
    # Written by sending when a delivery fails for good (which also disables the channel).
    readonly_fields = ("last_error", "last_error_at")

    @admin.display(description="target")
    def target(self, obj: Channel) -> str:
        return obj.target

    @admin.display(description="last error", ordering="last_error")
    def last_error_short(self, obj: Channel) -> str:
        return Truncator(obj.last_error).chars(80)


class ReadOnlyAdmin(admin.ModelAdmin):
    """History written only by the notification services: viewed here, never added, edited or deleted."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    fields = ("number", "started_at", "outcome", "duration_ms", "error")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "project",
        "channel",
        "digest",
        "state",
        "attempts",
        "created_at",
        "sent_at",
        "error",
    )
    list_filter = ("state", "digest", "channel__kind")
    search_fields = ("channel__project__slug", "channel__url", "last_error")
    list_select_related = ("channel__project",)
    date_hierarchy = "created_at"
    fields = (
        *("channel", "digest", "state", "attempts", "created_at", "next_attempt_at", "lease_expires_at"),
        *("sent_at", "last_error", "event_summaries"),
    )
    readonly_fields = fields
    inlines = [DeliveryAttemptInline]

    @admin.display(description="project", ordering="channel__project__slug")
    def project(self, obj: Delivery) -> str:
        return obj.channel.project.slug

    @admin.display(description="last error")
    def error(self, obj: Delivery) -> str:
        return Truncator(obj.last_error).chars(80)

    @admin.display(description="events")
    def event_summaries(self, obj: Delivery) -> str:
        return "\n".join(f"{e.kind}: {e.summary}" for e in obj.events.order_by("occurred_at", "id"))


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ("occurred_at", "project", "kind", "criterion", "owner", "summary_short")
    list_filter = ("kind", "project")
    search_fields = ("project__slug", "criterion", "summary", "key")
    list_select_related = ("project",)
    date_hierarchy = "occurred_at"
    fields = (
        *("project", "kind", "key", "occurred_at", "scorecard", "criterion", "dimension", "owner"),
        *("decision_before", "decision_after", "summary", "details"),
    )
    readonly_fields = fields

    @admin.display(description="summary")
    def summary_short(self, obj: Event) -> str:
        return Truncator(obj.summary).chars(100)
