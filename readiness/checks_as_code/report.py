"""What an import did (or, in a dry run, would do), as human lines and counts."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

# The first character of each line says what happened to the object it names.
MARKS = {"created": "+", "updated": "~", "unchanged": "=", "kept": "?", "note": "!"}


def value_text(value: Any) -> str:
    """A value as a person reads it in a change line: 300 rather than 300.0, none rather than None."""
    if value is None or value == "" or value == {}:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) or "none"
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def changes_text(changes: list[tuple[str, Any, Any]]) -> str:
    return ", ".join(f"{name} {value_text(old)} → {value_text(new)}" for name, old, new in changes)


@dataclass
class ImportReport:
    dry_run: bool = False
    lines: list[str] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    # Slugs of the projects whose scorecard may change: they are re-evaluated after the import.
    changed_projects: list[str] = field(default_factory=list)

    def add(self, status: str, text: str, *, project: str | None = None) -> None:
        self.lines.append(f"{MARKS[status]} {text}")
        if status != "note":
            self.counts[status] += 1
        if project and status in ("created", "updated") and project not in self.changed_projects:
            self.changed_projects.append(project)

    @property
    def changed(self) -> bool:
        return bool(self.counts["created"] or self.counts["updated"])

    def summary(self) -> str:
        counts = self.counts
        text = f"{counts['created']} created, {counts['updated']} updated, {counts['unchanged']} unchanged"
        if counts["kept"]:
            text += f", {counts['kept']} not in file (kept)"
        return text if self.changed else f"No changes ({text})."
