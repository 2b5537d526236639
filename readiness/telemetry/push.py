"""Parsing and validating a metrics push (PRODUCT.md §3): body in, COPY rows or every problem out.

The whole batch is judged before anything is stored; the first 100 problems are reported with their
point's index (``push_rules``). What a push may cost is bounded by its body's *structure*, not only its
size: orjson makes Python objects of ~90 bytes for each comma, colon or bracket, so a 5 MiB body of
``{},`` would take 150 MB. A body with no more structure than a real batch (WHOLE_BODY_STRUCTURE, counted
without parsing) is parsed whole, the fast path every ordinary push takes; any other is read a chunk of
points at a time (``push_reader``), within a few MB whatever it holds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from readiness.telemetry.push_reader import read_points
from readiness.telemetry.push_rules import (
    LABEL_KEY_RE,
    MAX_BODY_BYTES,
    MAX_DETAILS,
    MAX_LABEL_VALUE,
    MAX_LABELS,
    MAX_POINTS,
    METRIC_RE,
    NOT_A_LIST,
    NOT_AN_OBJECT,
    PointRules,
    Problems,
    PushInvalid,
    copy_text,
    not_json,
    point_count_invalid,
    unknown_fields_invalid,
)

__all__ = [
    "LABEL_KEY_RE",
    "MAX_BODY_BYTES",
    "MAX_DETAILS",
    "MAX_LABELS",
    "MAX_LABEL_VALUE",
    "MAX_POINTS",
    "METRIC_RE",
    "ParsedPush",
    "Problems",
    "PushInvalid",
    "document_points",
    "encode_points",
    "encode_valid_points",
    "parse_push",
    "read_points",
    "structure_of",
]

# Commas, colons and opening brackets: the most a batch of 10,000 points with a time and two labels
# each has (14 per point), with room to spare. Parsed whole, a body with this much structure costs
# at most ~20 MB of Python objects, whatever it is made of.
WHOLE_BODY_STRUCTURE = 200_000
# Every value of a JSON text but the first follows one of these bytes; every key, a colon.
_NOT_STRUCTURE = bytes(byte for byte in range(256) if byte not in b",:[")
# Rows are encoded this many at a time, so a 5 MiB batch never holds its rows as strings and as
# bytes at once.
ENCODE_EVERY = 512


@dataclass(frozen=True)
class ParsedPush:
    count: int
    rows: bytes  # COPY text rows: metric \t ts \t value \t labels-json \n


def structure_of(body: bytes) -> int:
    """An upper bound of the values and keys that parsing ``body`` makes (brackets, commas and colons
    inside strings count too); one pass in C, and none for a body shorter than the bound it is
    compared with, since a body never has more structure than bytes."""
    if len(body) <= WHOLE_BODY_STRUCTURE:
        return len(body)
    return len(body.translate(None, _NOT_STRUCTURE))


def parse_push(body: bytes, *, now: datetime, reserved_allowed: bool = False) -> ParsedPush:
    """Validate a push body and encode its points. Raises PushInvalid with per-point details.
    ``health.*`` names are refused unless ``reserved_allowed`` (the probes' own batches)."""
    problems = Problems()
    points = (
        document_points(body) if structure_of(body) <= WHOLE_BODY_STRUCTURE else read_points(body, problems)
    )
    return encode_points(points, problems, now=now, reserved_allowed=reserved_allowed)


def encode_points(
    points: Iterable[tuple[int, Any]], problems: Problems, *, now: datetime, reserved_allowed: bool = False
) -> ParsedPush:
    """Judge every point and encode the batch as COPY rows, or raise PushInvalid with its problems."""
    rules = PointRules(now=now, reserved_allowed=reserved_allowed)
    pending: list[str] = []
    encoded: list[bytes] = []
    count = 0
    for index, point in points:
        row = rules.row(index, point, problems)
        # Once the batch is refused its rows are of no use: stop keeping them.
        if row is not None and not problems.count:
            pending.append(row)
            count += 1
            if len(pending) == ENCODE_EVERY:
                encoded.append("".join(pending).encode())
                pending.clear()
    if problems.count:
        raise problems.invalid()
    rows = "".join(pending).encode()
    return ParsedPush(count=count, rows=b"".join((*encoded, rows)) if encoded else rows)


def encode_valid_points(points: Iterable[tuple[str, datetime, float, dict[str, str]]]) -> ParsedPush:
    """Encode points another path already judged by the push's rules (OTLP's mapping: names from
    ``METRIC_RE``, labels within the limits, finite values, times within bounds and in UTC) as the
    same COPY rows ``encode_points`` makes, so both paths store alike."""
    pending: list[str] = []
    encoded: list[bytes] = []
    count = 0
    # An export repeats a few label sets and times (an SDK stamps a collection's points alike) over
    # thousands of points: each is encoded once.
    labels_texts: dict[tuple[tuple[str, str], ...], str] = {(): "{}"}
    ts_texts: dict[datetime, str] = {}
    for metric, ts, value, labels in points:
        ts_text = ts_texts.get(ts)
        if ts_text is None:
            ts_text = ts_texts[ts] = ts.isoformat()
        key = tuple(labels.items())
        labels_text = labels_texts.get(key)
        if labels_text is None:
            labels_text = copy_text(orjson.dumps(labels, option=orjson.OPT_SORT_KEYS).decode())
            labels_texts[key] = labels_text
        pending.append(f"{metric}\t{ts_text}\t{value!r}\t{labels_text}\n")
        count += 1
        if len(pending) == ENCODE_EVERY:
            encoded.append("".join(pending).encode())
            pending.clear()
    rows = "".join(pending).encode()
    return ParsedPush(count=count, rows=b"".join((*encoded, rows)) if encoded else rows)


def document_points(body: bytes) -> Iterable[tuple[int, Any]]:
    """The points of a body parsed whole, with their index; PushInvalid for what the body answers."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        # orjson rejects NaN and Infinity literals, as the contract requires.
        raise not_json(str(exc)) from None
    if not isinstance(document, dict):
        raise PushInvalid(NOT_AN_OBJECT)
    if len(document) > 1 or "points" not in document:
        unknown = list(set(document) - {"points"})
        if unknown:
            raise unknown_fields_invalid(unknown)
    points = document.get("points")
    if not isinstance(points, list):
        raise PushInvalid(NOT_A_LIST)
    if not 1 <= len(points) <= MAX_POINTS:
        raise point_count_invalid(f"{len(points):,}")
    return enumerate(points)
