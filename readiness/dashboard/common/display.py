"""How the pages word and mark the product's statuses. Every status is shown as a symbol *and* a word,
never by colour alone (WCAG 1.4.1): a colour-blind reader and a black-and-white printout read the same."""

from __future__ import annotations

import math
from datetime import datetime

from readiness.projects.vocabulary import Dimension

DIMENSION_LABELS: dict[str, str] = dict(Dimension.choices)

STATUS_LABELS: dict[str, str] = {
    "pass": "Pass",
    "warn": "Warn",
    "fail": "Fail",
    "missing": "Missing",
    "waived": "Waived",
    "not_applicable": "N/A",
    "signoff_missing": "Sign-off missing",
    "signoff_stale": "Sign-off stale",
    "prohibited": "Prohibited risk tier",
}

DECISION_LABELS: dict[str, str] = {"go": "Go", "no_go": "No-go", "none": "Not evaluated"}

SIGNOFF_LABELS: dict[str, str] = {
    "valid": "Signed off",
    "stale": "Sign-off stale",
    "missing": "Not signed off",
}

_SYMBOLS: dict[str, str] = {
    "pass": "✓",
    "go": "✓",
    "warn": "!",
    "fail": "✗",
    "no_go": "✗",
    "missing": "?",
    "waived": "~",
    "not_applicable": "—",
    "signoff_missing": "✎",
    "signoff_stale": "✎",
    "prohibited": "⛔",
}


def status_symbol(status: str | None) -> str:
    return _SYMBOLS.get(status or "", "·")


def format_number(value: float | None) -> str:
    """A measured value as a person reads it: four significant digits, thousands grouped."""
    if value is None:
        return "—"
    if not math.isfinite(value):
        return str(value)
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def parse_time(text: str | None) -> datetime | None:
    """Times in a stored scorecard payload are ISO 8601 strings (PRODUCT.md §3)."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


class ShowsStatus:
    """For a view object with a ``status``: its word and its symbol, the pair every page shows."""

    status: str

    @property
    def status_label(self) -> str:
        return STATUS_LABELS.get(self.status, self.status)

    @property
    def symbol(self) -> str:
        return status_symbol(self.status)


class ShowsDecision:
    """For a view object with a ``decision``: its word and its symbol."""

    decision: str

    @property
    def decision_label(self) -> str:
        return DECISION_LABELS.get(self.decision, self.decision)

    @property
    def symbol(self) -> str:
        return status_symbol(self.decision)
