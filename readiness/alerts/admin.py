"""Notification channels in the admin console."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.contrib import admin
from django.core.validators import validate_email
from django.utils.text import Truncator

from readiness.alerts.models import Channel


class EmailListField(forms.CharField):
    """Recipients typed as "a@example.com, b@example.com", stored as a JSON list."""

    def prepare_value(self, value: Any) -> Any:
        return ", ".join(value) if isinstance(value, list) else value

    def to_python(self, value: Any) -> list[str]:
        if isinstance(value, list):
            return value
        return [part for part in re.split(r"[,\s]+", value or "") if part]

    def has_changed(self, initial: Any, data: Any) -> bool:
        # A blank new row starts with no recipients, not an empty string: unchanged, so skipped.
        return self.to_python(data) != (initial or [])

    def validate(self, value: list[str]) -> None:
        super().validate(value)
        for address in value:
            try:
                validate_email(address)
            except forms.ValidationError:
                raise forms.ValidationError(f"{address!r} is not an email address.") from None


class ChannelForm(forms.ModelForm):
    to = EmailListField(
        required=False,
        label="Recipients",
        help_text="Email channels: addresses separated by commas.",
        widget=forms.TextInput(attrs={"size": 60}),
    )

    class Meta:
        model = Channel
        fields = ("kind", "url", "to", "enabled")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        kind = cleaned.get("kind")
        if kind == Channel.Kind.WEBHOOK and not cleaned.get("url"):
            self.add_error("url", "A webhook channel needs a URL.")
        if kind == Channel.Kind.EMAIL and not cleaned.get("to") and not self.has_error("to"):
            self.add_error("to", "An email channel needs at least one recipient.")
        return cleaned


class ChannelInline(admin.TabularInline):
    model = Channel
    form = ChannelForm
    fields = ("kind", "url", "to", "enabled", "last_error")
    readonly_fields = ("last_error",)
    extra = 0
    show_change_link = True


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    form = ChannelForm
    list_display = ("project", "kind", "target", "enabled", "last_error_short")
    list_filter = ("kind", "enabled", "project")
    search_fields = ("url", "to", "project__slug", "last_error")
    list_select_related = ("project",)
    autocomplete_fields = ("project",)
    fields = ("project", "kind", "url", "to", "enabled", "last_error")
    # Written by the transport when a delivery fails for good (which also disables the channel).
    readonly_fields = ("last_error",)

    @admin.display(description="target")
    def target(self, obj: Channel) -> str:
        return obj.url if obj.kind == Channel.Kind.WEBHOOK else ", ".join(obj.to)

    @admin.display(description="last error", ordering="last_error")
    def last_error_short(self, obj: Channel) -> str:
        return Truncator(obj.last_error).chars(80)
