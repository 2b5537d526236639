"""Parsing and validating a metrics push (PRODUCT.md §3), in one tight loop.

A 10,000-point batch is the common case, so this avoids per-point serializer objects: orjson parses
the body, one pass checks every rule and encodes each point straight into a PostgreSQL COPY row.
The whole batch is judged before anything is stored; every bad point is reported with its index.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

MAX_POINTS = 10_000
MAX_BODY_BYTES = 5 * 1024 * 1024
MAX_LABELS = 10
MAX_LABEL_VALUE = 200
MAX_DETAILS = 100  # enough to fix a payload; bounds the size of an error response
FUTURE_LEEWAY = timedelta(minutes=5)
MAX_AGE = timedelta(days=400)

METRIC_RE = re.compile(r"[a-z][a-z0-9_.:]{0,99}")
LABEL_KEY_RE = re.compile(r"[a-z_][a-z0-9_]{0,49}")
POINT_FIELDS = frozenset({"metric", "value", "ts", "labels"})


class PushInvalid(Exception):
    def __init__(self, message: str, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []


@dataclass(frozen=True)
class ParsedPush:
    count: int
    rows: bytes  # COPY text rows: metric \t ts \t value \t labels-json \n


def _copy_text(text: str) -> str:
    # COPY's text format gives backslash, tab and newline a meaning; JSON already escapes tab and
    # newline inside strings, so only backslashes need doubling.
    return text.replace("\\", "\\\\")


def _point_error(index: int, field: str, message: str) -> dict[str, Any]:
    return {"index": index, "field": field, "message": message}


def parse_push(body: bytes, *, now: datetime) -> ParsedPush:
    """Validate a push body and encode its points. Raises PushInvalid with per-point details."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        # orjson rejects NaN and Infinity literals, as the contract requires.
        raise PushInvalid(f"the body is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise PushInvalid('the body must be a JSON object {"points": [...]}')
    unknown = sorted(set(document) - {"points"})
    if unknown:
        raise PushInvalid(
            f"unknown field(s): {', '.join(unknown)}", [_point_error(-1, f, "unknown field") for f in unknown]
        )
    points = document.get("points")
    if not isinstance(points, list):
        raise PushInvalid('"points" must be a list of 1 to 10,000 points')
    if not 1 <= len(points) <= MAX_POINTS:
        raise PushInvalid(f'"points" must hold 1 to {MAX_POINTS:,} points, got {len(points):,}')

    earliest, latest = now - MAX_AGE, now + FUTURE_LEEWAY
    default_ts = now.astimezone(UTC).isoformat()
    errors: list[dict[str, Any]] = []
    rows: list[str] = []
    metric_ok = METRIC_RE.fullmatch
    key_ok = LABEL_KEY_RE.fullmatch
    for index, point in enumerate(points):
        if not isinstance(point, dict):
            errors.append(_point_error(index, "", "a point must be an object"))
            continue
        if len(errors) >= MAX_DETAILS:
            break
        if not POINT_FIELDS.issuperset(point):
            for field in sorted(set(point) - POINT_FIELDS):
                errors.append(_point_error(index, field, "unknown field"))
        metric = point.get("metric")
        if not isinstance(metric, str) or metric_ok(metric) is None:
            errors.append(
                _point_error(index, "metric", "1-100 characters of [a-z0-9_.:], starting with a letter")
            )
        value = point.get("value")
        # bool is an int in Python; the contract says booleans are not numbers.
        if type(value) is float:
            if not math.isfinite(value):
                errors.append(_point_error(index, "value", "must be a finite number"))
        elif type(value) is int:
            try:
                value = float(value)
            except OverflowError:
                errors.append(_point_error(index, "value", "must be a finite number"))
        else:
            errors.append(_point_error(index, "value", "must be a number"))
        ts_raw = point.get("ts")
        if ts_raw is None:
            ts_text = default_ts
        elif not isinstance(ts_raw, str):
            errors.append(_point_error(index, "ts", "must be an ISO 8601 time with offset"))
            ts_text = ""
        else:
            try:
                ts = datetime.fromisoformat(ts_raw)
            except ValueError:
                errors.append(_point_error(index, "ts", "must be an ISO 8601 time with offset"))
                ts_text = ""
            else:
                ts_text = ""
                if ts.tzinfo is None:
                    errors.append(_point_error(index, "ts", "needs a UTC offset, e.g. 2026-11-22T10:00:00Z"))
                elif ts > latest:
                    errors.append(_point_error(index, "ts", "is more than 5 minutes in the future"))
                elif ts < earliest:
                    errors.append(_point_error(index, "ts", "is older than 400 days"))
                else:
                    # In UTC: Python accepts offsets PostgreSQL refuses (beyond ±15:59, or with
                    # seconds), and a row the database refuses would fail every apply after the 202.
                    ts_text = ts.astimezone(UTC).isoformat()
        labels = point.get("labels")
        labels_text = "{}"
        if labels is not None:
            if not isinstance(labels, dict):
                errors.append(_point_error(index, "labels", "must be an object of string values"))
            elif labels:
                if len(labels) > MAX_LABELS:
                    errors.append(_point_error(index, "labels", f"at most {MAX_LABELS} pairs"))
                for key, label in labels.items():
                    if key_ok(key) is None:
                        errors.append(_point_error(index, f"labels.{key}", "keys are [a-z_][a-z0-9_]{0,49}"))
                    if not isinstance(label, str):
                        errors.append(_point_error(index, f"labels.{key}", "values must be strings"))
                    elif "\x00" in label:
                        # PostgreSQL text (and jsonb) cannot hold NUL: refused here, not after the 202.
                        errors.append(
                            _point_error(index, f"labels.{key}", "must not contain the NUL character")
                        )
                    elif len(label) > MAX_LABEL_VALUE:
                        errors.append(
                            _point_error(index, f"labels.{key}", f"at most {MAX_LABEL_VALUE} characters")
                        )
                labels_text = _copy_text(orjson.dumps(labels, option=orjson.OPT_SORT_KEYS).decode())
        if not errors:
            rows.append(f"{metric}\t{ts_text}\t{value!r}\t{labels_text}\n")
    if errors:
        noun = "point" if len({e["index"] for e in errors}) == 1 else "points"
        raise PushInvalid(f"invalid {noun}: nothing was stored", errors[:MAX_DETAILS])
    return ParsedPush(count=len(rows), rows="".join(rows).encode())
