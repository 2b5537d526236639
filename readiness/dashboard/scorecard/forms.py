"""The scorecard page's forms: one per action."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from readiness.scoring.models import MAX_WAIVER_DAYS

# A month: long enough to fix most things, short enough to be looked at again.
DEFAULT_WAIVER_DAYS = 30


# --- Actions on the scorecard page -----------------------------------------------------------------
# These forms only parse what a person typed, with the limits of the API's input serializers
# (readiness/api/serializers.py); every rule of the product — who may act, evidence required, a waiver
# lasts at most 90 days, nobody signs off what fails — is the services' to enforce, and their
# ValidationError lands next to the field it names (``add_service_errors``).

TEXT_LIMIT = 5000  # the API's limit on notes and reasons


class ActionForm(forms.Form):
    def __init__(self, *args: Any, id_prefix: str, **kwargs: Any) -> None:
        # One page holds a form per criterion: ids must stay unique for labels and anchors to work.
        super().__init__(*args, auto_id=f"{id_prefix}-%s", label_suffix="", **kwargs)

    def add_service_errors(self, error: ValidationError) -> None:
        """Show a service's ValidationError next to the fields it names, the rest above the form."""
        if not hasattr(error, "error_dict"):
            self.add_error(None, error.messages)
            return
        for name, errors in error.error_dict.items():
            self.add_error(name if name in self.fields else None, [sentence(e.messages) for e in errors])


def sentence(fragments: list[str]) -> str:
    """The services speak in lower-case fragments ("a reason is required"), as the API's error
    details; a page shows them as a sentence."""
    message = " ".join(fragments)
    return message[:1].upper() + message[1:] + ("" if message.endswith(".") else ".")


class AttestForm(ActionForm):
    evidence_url = forms.CharField(
        required=False,
        max_length=500,
        label="Evidence link",
        widget=forms.URLInput(attrs={"placeholder": "https://…", "inputmode": "url"}),
    )
    note = forms.CharField(required=False, max_length=TEXT_LIMIT, widget=forms.Textarea(attrs={"rows": 2}))


class NotApplicableForm(ActionForm):
    reason = forms.CharField(
        max_length=TEXT_LIMIT,
        label="Why it does not apply",
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class WaiverRequestForm(ActionForm):
    reason = forms.CharField(max_length=TEXT_LIMIT, widget=forms.Textarea(attrs={"rows": 2}))
    expires_at = forms.DateField(label="Expires on", widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args: Any, today: date, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        widget = self.fields["expires_at"].widget
        # The browser's date picker offers the allowed range; the service still decides.
        widget.attrs |= {
            "min": (today + timedelta(days=1)).isoformat(),
            "max": (today + timedelta(days=MAX_WAIVER_DAYS)).isoformat(),
        }
        self.today = today
        if not self.is_bound:
            self.initial.setdefault("expires_at", today + timedelta(days=DEFAULT_WAIVER_DAYS))

    def expiry(self, now: datetime) -> datetime:
        """The chosen day at the current time of day: "in 90 days" is exactly the longest waiver."""
        return now + timedelta(days=(self.cleaned_data["expires_at"] - self.today).days)


class SignOffForm(ActionForm):
    note = forms.CharField(
        required=False,
        max_length=TEXT_LIMIT,
        label="Note (optional)",
        widget=forms.Textarea(attrs={"rows": 2}),
    )
