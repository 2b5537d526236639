"""The portfolio's filters: a plain GET form, so a filtered view is a URL to bookmark and share."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django import forms

from readiness.dashboard.common.display import DECISION_LABELS
from readiness.dashboard.portfolio.selectors import PortfolioFilters
from readiness.projects.vocabulary import RiskTier, Stage

if TYPE_CHECKING:
    from django.http import QueryDict

MAX_SEARCH_LENGTH = 100


class PortfolioFilterForm(forms.Form):
    team = forms.ChoiceField(required=False)
    stage = forms.ChoiceField(required=False, choices=[("", "All active stages"), *Stage.choices])
    risk_tier = forms.ChoiceField(
        required=False, label="Risk tier", choices=[("", "Any tier"), *RiskTier.choices]
    )
    decision = forms.ChoiceField(required=False, choices=[("", "Any decision"), *DECISION_LABELS.items()])
    q = forms.CharField(
        required=False,
        label="Search",
        max_length=MAX_SEARCH_LENGTH,
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Name, team or description"}),
    )

    def __init__(self, data: QueryDict, *, teams: list[tuple[str, str]]) -> None:
        # No "Team:" colon: the labels sit above the fields.
        super().__init__(data, label_suffix="")
        self.fields["team"].choices = [("", "All teams"), *teams]

    def filters(self) -> tuple[PortfolioFilters, list[str]]:
        """The valid filters, and one message per ignored parameter.

        A bad value is ignored rather than answered with a 400: a bookmarked view whose team was renamed
        should still open, saying what it left out, instead of failing outright."""
        self.is_valid()
        values: dict[str, str] = {}
        ignored: list[str] = []
        for name, field in self.fields.items():
            if name in self.errors:
                raw = self.data.get(name, "")
                shown = raw if len(raw) <= 40 else raw[:40] + "…"
                ignored.append(
                    f"{field.label or name.capitalize()}: “{shown}” is not a valid value; ignored."
                )
            else:
                values[name] = self.cleaned_data.get(name) or ""
        return PortfolioFilters(**values), ignored
