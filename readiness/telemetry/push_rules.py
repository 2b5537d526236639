"""The rules of a metrics push (PRODUCT.md §3): the limits, the problems reported, and one point's check.

A 10,000-point batch is the common case, so a point is checked in one tight function, without
per-point serializer objects, and encoded straight into a PostgreSQL COPY row.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from readiness.telemetry.provenance import RESERVED_PREFIX, is_reserved

MAX_POINTS = 10_000
MAX_BODY_BYTES = 5 * 1024 * 1024
MAX_LABELS = 10
MAX_LABEL_VALUE = 200
# Enough to fix a payload, and it bounds the error response: past it problems are only counted.
MAX_DETAILS = 100
MAX_NAME_SHOWN = 64  # longer than any valid key
FUTURE_LEEWAY = timedelta(minutes=5)
MAX_AGE = timedelta(days=400)

METRIC_RE = re.compile(r"[a-z][a-z0-9_.:]{0,99}")
LABEL_KEY_RE = re.compile(r"[a-z_][a-z0-9_]{0,49}")
POINT_FIELDS = frozenset({"metric", "value", "ts", "labels"})

# What is said about a field whatever exactly is wrong with its value; the body reader says the same
# of a value too large to look at.
METRIC_RULE = "1-100 characters of [a-z0-9_.:], starting with a letter"
VALUE_RULE = "must be a number"
TS_RULE = "must be an ISO 8601 time with offset"
LABELS_RULE = "must be an object of string values"
LABELS_LIMIT = f"at most {MAX_LABELS} pairs"
LABEL_VALUE_RULE = "values must be strings"
RESERVED_RULE = f"names starting with {RESERVED_PREFIX!r} are reserved for Readiness' health checks"
NOT_A_POINT = "a point must be an object"
FIELD_RULES = {"metric": METRIC_RULE, "value": VALUE_RULE, "ts": TS_RULE, "labels": LABELS_RULE}

NOT_AN_OBJECT = 'the body must be a JSON object {"points": [...]}'
NOT_A_LIST = f'"points" must be a list of 1 to {MAX_POINTS:,} points'


class PushInvalid(Exception):
    def __init__(self, message: str, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []


def field_name(name: str) -> str:
    """A field's name as a detail shows it: a name longer than any valid one is cut, so a body of one
    5 MiB key cannot make an error response of 5 MiB."""
    return name if len(name) <= MAX_NAME_SHOWN else name[:MAX_NAME_SHOWN] + "…"


def not_json(reason: str) -> PushInvalid:
    return PushInvalid(f"the body is not valid JSON: {reason}")


def point_count_invalid(count: str) -> PushInvalid:
    return PushInvalid(f'"points" must hold 1 to {MAX_POINTS:,} points, got {count}')


def unknown_fields_invalid(names: list[str], *, complete: bool = True) -> PushInvalid:
    """The body's own unknown fields (index -1); ``complete`` is False when reading stopped before the
    last of them."""
    shown = [field_name(name) for name in sorted(names)[:MAX_DETAILS]]
    listed = ", ".join(shown[:5])
    if not complete:
        listed += " and more"
    elif len(names) > 5:
        listed += f" and {len(names) - 5:,} more"
    details = [{"index": -1, "field": name, "message": "unknown field"} for name in shown]
    return PushInvalid(f"unknown field(s): {listed}", details)


class Problems:
    """What is wrong with a push's points, as the error's details: the first MAX_DETAILS are kept and
    the rest only counted, so a body of 10,000 bad points answers in a few kilobytes."""

    def __init__(self) -> None:
        self.details: list[dict[str, Any]] = []
        self.count = 0
        # The point at which the body reader gave up (push_reader: a value too large to look at).
        self.stopped_at: int | None = None

    def add(self, index: int, field: str, message: str) -> None:
        self.count += 1
        if len(self.details) < MAX_DETAILS:
            self.details.append({"index": index, "field": field, "message": message})

    def invalid(self) -> PushInvalid:
        more = self.count - len(self.details)
        noun = "point" if not more and len({d["index"] for d in self.details}) == 1 else "points"
        message = f"invalid {noun}: nothing was stored"
        if more:
            message += f"; the first {MAX_DETAILS} problems are listed, and {more:,} more"
        if self.stopped_at is not None:
            message += f"; validation stopped at point {self.stopped_at}, whose size no valid point has"
        return PushInvalid(message, self.details)


def copy_text(text: str) -> str:
    # COPY's text format gives backslash, tab and newline a meaning; JSON already escapes tab and
    # newline inside strings, so only backslashes need doubling.
    return text.replace("\\", "\\\\")


class PointRules:
    """One point's rules, judged against one clock reading for the whole batch."""

    def __init__(self, *, now: datetime, reserved_allowed: bool = False) -> None:
        self.now = now
        self.reserved_allowed = reserved_allowed
        self.earliest, self.latest = now - MAX_AGE, now + FUTURE_LEEWAY
        self.default_ts = ""  # formatted once per batch, for the first point that needs it

    def row(self, index: int, point: Any, problems: Problems) -> str | None:
        """The point's COPY row (metric, ts, value, labels-json), or None after adding its problems."""
        if type(point) is not dict:
            problems.add(index, "", NOT_A_POINT)
            return None
        # A limit that a point breaks ends its validation: one detail however many unknown fields or
        # labels it carries (a point of 150,000 labels is one problem, not 150,000).
        if not POINT_FIELDS.issuperset(point):
            unknown = set(point) - POINT_FIELDS
            others = f" ({len(unknown) - 1:,} more unknown fields)" if len(unknown) > 1 else ""
            problems.add(index, field_name(min(unknown)), f"unknown field{others}")
            return None
        labels = point.get("labels")
        if type(labels) is dict and len(labels) > MAX_LABELS:
            problems.add(index, "labels", LABELS_LIMIT)
            return None
        before = problems.count
        metric = point.get("metric")
        if not isinstance(metric, str) or METRIC_RE.fullmatch(metric) is None:
            problems.add(index, "metric", METRIC_RULE)
        elif not self.reserved_allowed and is_reserved(metric):
            # A team must not be able to report its own availability: one such point refuses the push.
            problems.add(index, "metric", RESERVED_RULE)
        value = point.get("value")
        # bool is an int in Python; the contract says booleans are not numbers.
        if type(value) is float:
            if not math.isfinite(value):
                problems.add(index, "value", "must be a finite number")
        elif type(value) is int:
            try:
                value = float(value)
            except OverflowError:
                problems.add(index, "value", "must be a finite number")
        else:
            problems.add(index, "value", VALUE_RULE)
        ts_text = self._ts_text(index, point.get("ts"), problems)
        labels_text = "{}"
        if labels is not None:
            if type(labels) is not dict:
                problems.add(index, "labels", LABELS_RULE)
            elif labels:
                self._check_labels(index, labels, problems)
                labels_text = copy_text(orjson.dumps(labels, option=orjson.OPT_SORT_KEYS).decode())
        if problems.count != before:
            return None
        return f"{metric}\t{ts_text}\t{value!r}\t{labels_text}\n"

    def _ts_text(self, index: int, ts_raw: Any, problems: Problems) -> str:
        if ts_raw is None:
            if not self.default_ts:
                self.default_ts = self.now.astimezone(UTC).isoformat()
            return self.default_ts
        if not isinstance(ts_raw, str):
            problems.add(index, "ts", TS_RULE)
            return ""
        try:
            ts = datetime.fromisoformat(ts_raw)
        except ValueError:
            problems.add(index, "ts", TS_RULE)
            return ""
        if ts.tzinfo is None:
            problems.add(index, "ts", "needs a UTC offset, e.g. 2026-11-22T10:00:00Z")
        elif ts > self.latest:
            problems.add(index, "ts", "is more than 5 minutes in the future")
        elif ts < self.earliest:
            problems.add(index, "ts", "is older than 400 days")
        else:
            # In UTC: Python accepts offsets PostgreSQL refuses (beyond ±15:59, or with seconds),
            # and a row the database refuses would fail every apply after the 202.
            return ts.astimezone(UTC).isoformat()
        return ""

    @staticmethod
    def _check_labels(index: int, labels: dict[str, Any], problems: Problems) -> None:
        for key, label in labels.items():
            if LABEL_KEY_RE.fullmatch(key) is None:
                problems.add(index, f"labels.{field_name(key)}", "keys are [a-z_][a-z0-9_]{0,49}")
            if not isinstance(label, str):
                problems.add(index, f"labels.{field_name(key)}", LABEL_VALUE_RULE)
            elif "\x00" in label:
                # PostgreSQL text (and jsonb) cannot hold NUL: refused here, not after the 202.
                problems.add(index, f"labels.{field_name(key)}", "must not contain the NUL character")
            elif len(label) > MAX_LABEL_VALUE:
                problems.add(index, f"labels.{field_name(key)}", f"at most {MAX_LABEL_VALUE} characters")
