"""Reading a push body whose structure could cost more memory than any real push has (PRODUCT.md §3).

orjson builds Python objects for every value at once: a 5 MiB body of ``{},`` is 1.7 million dicts and
150 MB. Such a body is read here instead, a chunk of points at a time. A regular expression (C speed,
no objects made) finds up to CHUNK_POINTS consecutive values that have the shape of a point: an object
of at most SHAPE_MEMBERS members whose values are scalars or flat containers of at most SHAPE_MEMBERS
items (every valid point has it, with room for the invalid ones the rules name precisely). orjson parses
that chunk alone, so memory is bounded by one chunk whatever the body holds.

A value without that shape is no valid point. It is looked at only as far as the first limit it breaks
(an unknown field, a 17th label, a nested value), that becomes its point's one problem, and reading
stops there: the batch is refused anyway, and the rest could be megabytes of anything.
"""

from __future__ import annotations

import re
from collections.abc import Generator, Iterator
from typing import Any

import orjson

from readiness.telemetry.push_rules import (
    FIELD_RULES,
    LABEL_VALUE_RULE,
    LABELS_LIMIT,
    MAX_DETAILS,
    MAX_POINTS,
    NOT_A_LIST,
    NOT_A_POINT,
    NOT_AN_OBJECT,
    POINT_FIELDS,
    Problems,
    PushInvalid,
    field_name,
    not_json,
    point_count_invalid,
    unknown_fields_invalid,
)

# Points parsed by one orjson call: few enough that their objects stay small (256 points of at most
# 273 values each), many enough that a 10,000-point batch costs 40 calls, not 10,000.
CHUNK_POINTS = 256
# More members than a point (4 fields) or its labels (10) may have, so that a point with a few unknown
# fields or labels too many is still parsed and reported by the rules, like any other invalid point.
SHAPE_MEMBERS = 16

# The patterns only delimit values; orjson judges them (escapes, UTF-8, numbers, NaN). Possessive
# quantifiers never backtrack, so a match costs linear time whatever the bytes.
_WS = rb"[ \t\n\r]*+"
_STRING = rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"'
_SCALAR = rb"(?:" + _STRING + rb'|[^ \t\n\r,:{}\[\]"]++)'


def _members(value: bytes) -> bytes:
    member = _STRING + _WS + b":" + _WS + value + _WS
    return rb"(?:%b(?:,%b%b){0,%d}+)?+" % (member, _WS, member, SHAPE_MEMBERS - 1)


def _items(value: bytes) -> bytes:
    item = value + _WS
    return rb"(?:%b(?:,%b%b){0,%d}+)?+" % (item, _WS, item, SHAPE_MEMBERS - 1)


_FLAT = rb"(?:\{%b%b\}|\[%b%b\])" % (_WS, _members(_SCALAR), _WS, _items(_SCALAR))
_POINT = rb"(?>\{%b%b\}|%b|%b)" % (_WS, _members(rb"(?:%b|%b)" % (_SCALAR, _FLAT)), _FLAT, _SCALAR)

WS_RE = re.compile(_WS)
STRING_RE = re.compile(_STRING, re.DOTALL)
SCALAR_RE = re.compile(_SCALAR, re.DOTALL)
FLAT_RE = re.compile(rb"(?:%b|%b)" % (_SCALAR, _FLAT), re.DOTALL)
POINT_RE = re.compile(_POINT, re.DOTALL)
CHUNK_RE = re.compile(rb"%b(?:%b,%b%b){0,%d}+" % (_POINT, _WS, _WS, _POINT, CHUNK_POINTS - 1), re.DOTALL)


def read_points(body: bytes, problems: Problems) -> Iterator[tuple[int, Any]]:
    """The points of ``{"points": [...]}`` with their index, a chunk at a time. Raises PushInvalid for
    what the whole body answers (not JSON, not an object, no list, too many points, unknown fields);
    a value with no point's shape becomes a problem of its point and ends the reading."""
    return _Reader(body, problems).points()


class _Reader:
    def __init__(self, body: bytes, problems: Problems) -> None:
        self.body = body
        self.problems = problems

    def points(self) -> Iterator[tuple[int, Any]]:
        body = self.body
        pos = self._ws(0)
        if body[pos : pos + 1] != b"{":
            value = FLAT_RE.match(body, pos)
            if value is not None and self._ws(value.end()) == len(body):
                self._check_json(value.group(), pos)
                raise PushInvalid(NOT_AN_OBJECT)
            if body[pos : pos + 1] == b"[":  # a list too large to look at is still not an object
                raise PushInvalid(NOT_AN_OBJECT)
            raise self._unexpected(pos)
        pos = self._ws(pos + 1)
        unknown: list[str] = []
        unknown_members = 0
        seen_points = False
        if body[pos : pos + 1] != b"}":
            while True:
                key, pos = self._key(pos)
                if key == "points":
                    if seen_points:
                        # orjson would keep the last list; here the first was read already.
                        raise PushInvalid('"points" appears more than once')
                    seen_points = True
                    pos = yield from self._point_list(pos)
                    if self.problems.stopped_at is not None:
                        return
                else:
                    unknown_members += 1
                    if key not in unknown:
                        unknown.append(key)
                    shaped = FLAT_RE.match(body, pos)
                    # Too large to skip cheaply, or enough read: the body is refused either way.
                    if shaped is None or unknown_members > MAX_DETAILS:
                        raise unknown_fields_invalid(unknown, complete=False)
                    self._check_json(shaped.group(), pos)
                    pos = shaped.end()
                pos = self._ws(pos)
                if body[pos : pos + 1] == b"}":
                    break
                if body[pos : pos + 1] != b",":
                    raise self._unexpected(pos)
                pos = self._ws(pos + 1)
        pos = self._ws(pos + 1)
        if pos != len(body):
            raise self._unexpected(pos)
        if unknown:
            raise unknown_fields_invalid(unknown)
        if not seen_points:
            raise PushInvalid(NOT_A_LIST)

    def _point_list(self, pos: int) -> Generator[tuple[int, Any], None, int]:
        """Yields the list's points; returns the position after its closing bracket."""
        body = self.body
        if body[pos : pos + 1] != b"[":
            raise PushInvalid(NOT_A_LIST)
        pos = self._ws(pos + 1)
        if body[pos : pos + 1] == b"]":
            raise point_count_invalid("0")
        index = 0
        while True:
            chunk = CHUNK_RE.match(body, pos)
            if chunk is None:
                self._stop_at(index, pos)
                return pos
            for point in self._parse(chunk, index):
                if index == MAX_POINTS:
                    raise point_count_invalid(f"more than {MAX_POINTS:,}")
                yield index, point
                index += 1
            pos = self._ws(chunk.end())
            if body[pos : pos + 1] == b"]":
                return pos + 1
            if body[pos : pos + 1] != b",":
                raise self._unexpected(pos)
            pos = self._ws(pos + 1)

    def _parse(self, chunk: re.Match[bytes], first: int) -> list[Any]:
        start, end = chunk.span()
        try:
            return orjson.loads(b"".join((b"[", memoryview(self.body)[start:end], b"]")))
        except orjson.JSONDecodeError:
            pass
        # Name the point that is not JSON: parse the chunk's points one by one.
        pos, index = start, first
        while pos < end and (point := POINT_RE.match(self.body, pos)) is not None:
            self._check_json(point.group(), pos, index)
            pos = self._ws(self._ws(point.end()) + 1)
            index += 1
        raise not_json(f"in the points from index {first}")

    def _stop_at(self, index: int, pos: int) -> None:
        field, message = self._diagnose(index, pos)
        self.problems.add(index, field, message)
        self.problems.stopped_at = index

    def _diagnose(self, index: int, pos: int) -> tuple[str, str]:
        """The first limit that the value at ``pos`` (which has no point's shape) breaks, as a detail's
        field and message; looks at most at SHAPE_MEMBERS + 1 members of it and of its labels."""
        body = self.body
        if body[pos : pos + 1] == b"[":
            return "", NOT_A_POINT
        if body[pos : pos + 1] != b"{":
            raise self._unexpected(pos)
        pos = self._ws(pos + 1)
        members = 0
        while True:
            key, pos = self._key(pos)
            members += 1
            if key not in POINT_FIELDS:
                return field_name(key), "unknown field"
            if members > SHAPE_MEMBERS:
                return key, "appears more than once"
            if key == "labels" and body[pos : pos + 1] == b"{":
                found = self._diagnose_labels(pos)
                if isinstance(found, tuple):
                    return found
                pos = found
            else:
                value = FLAT_RE.match(body, pos)
                if value is None:
                    if body[pos : pos + 1] in (b"{", b"["):
                        return key, FIELD_RULES[key]
                    raise self._unexpected(pos)
                pos = value.end()
            pos = self._ws(pos)
            if body[pos : pos + 1] != b",":
                # Every member had a shape a point may have, so the object itself is malformed.
                raise self._unexpected(pos)
            pos = self._ws(pos + 1)

    def _diagnose_labels(self, pos: int) -> tuple[str, str] | int:
        """The labels' first broken limit, or the position after them if they break none."""
        body = self.body
        pos = self._ws(pos + 1)
        if body[pos : pos + 1] == b"}":
            return pos + 1
        pairs = 0
        while True:
            key, pos = self._key(pos)
            pairs += 1
            if pairs > SHAPE_MEMBERS:
                return "labels", LABELS_LIMIT
            value = SCALAR_RE.match(body, pos)
            if value is None:
                if body[pos : pos + 1] in (b"{", b"["):
                    return f"labels.{field_name(key)}", LABEL_VALUE_RULE
                raise self._unexpected(pos)
            pos = self._ws(value.end())
            if body[pos : pos + 1] == b"}":
                return pos + 1
            if body[pos : pos + 1] != b",":
                raise self._unexpected(pos)
            pos = self._ws(pos + 1)

    def _key(self, pos: int) -> tuple[str, int]:
        """An object's key and the position of its value, after the colon."""
        found = STRING_RE.match(self.body, pos)
        if found is None:
            raise self._unexpected(pos, "a string (an object's key)")
        key = self._check_json(found.group(), pos)
        pos = self._ws(found.end())
        if self.body[pos : pos + 1] != b":":
            raise self._unexpected(pos, "':'")
        return key, self._ws(pos + 1)

    def _check_json(self, text: bytes, pos: int, index: int | None = None) -> Any:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            where = f"point {index}" if index is not None else f"the value at byte {pos}"
            raise not_json(f"{exc.msg} in {where}") from None

    def _ws(self, pos: int) -> int:
        return WS_RE.match(self.body, pos).end()  # type: ignore[union-attr]  # matches the empty string

    def _unexpected(self, pos: int, expected: str = "") -> PushInvalid:
        found = "end of data" if pos >= len(self.body) else f"character {self.body[pos : pos + 1]!r}"
        wanted = f" where {expected} was expected" if expected else ""
        return not_json(f"unexpected {found} at byte {pos}{wanted}")
