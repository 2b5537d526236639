"""Small value checkers for the checks-as-code validator.

Each checker looks at one value parsed from YAML, records a problem at its YAML path when the value is
wrong, and returns the value normalized for the model (or ``INVALID``). Nothing here raises on odd input:
the validator must collect *every* problem of a file, whatever shape the file has.
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
import re
import reprlib
from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator, validate_email
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime


class _Invalid:
    """The value was wrong; its problem is already recorded."""

    def __repr__(self) -> str:
        return "INVALID"


INVALID: Any = _Invalid()


class _Missing:
    """The key is absent from its mapping: a checker given this reports the key as required."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()

# PostgreSQL integer columns; a bigger number would fail at write time instead of validation time.
MAX_INT = 2**31 - 1


class ChecksInvalid(Exception):
    """A checks-as-code document has problems; ``errors`` lists every one as (path, message)."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        self.errors = errors
        count = len(errors)
        super().__init__(f"{count} error{'s' if count != 1 else ''}; nothing was applied")


class Problems:
    """Collects (path, message) pairs in the order they are found."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, path: str, message: str) -> None:
        self.items.append((path or "document", message))

    def __len__(self) -> int:
        return len(self.items)


def at(path: str, part: str | int) -> str:
    """``projects`` + 0 → ``projects[0]``; ``projects[0]`` + ``owners`` → ``projects[0].owners``."""
    if isinstance(part, int):
        return f"{path}[{part}]"
    return f"{path}.{part}" if path else part


_LAST_SEGMENT = re.compile(r"\[\d+\]$|\.[^.\[]*$")


def in_document_order(items: list[tuple[str, str]], document: Any) -> list[tuple[str, str]]:
    """Problems sorted as their places appear in the file, so a person can fix them top to bottom.
    A problem about a key that is missing sorts with the mapping that misses it."""
    order: dict[str, int] = {}
    stack: list[tuple[str, Any]] = [("", document)]
    # YAML aliases share one collection between places, or nest one in itself (`&a [*a]`): each is
    # walked once, at its first place, so a cycle cannot loop and an alias bomb cannot explode.
    walked: set[int] = set()
    while stack:  # depth-first, iterative: a deeply nested file must not exhaust the recursion limit
        path, value = stack.pop()
        order.setdefault(path, len(order))
        if isinstance(value, dict | list):
            if id(value) in walked:
                continue
            walked.add(id(value))
        if isinstance(value, dict):
            stack.extend(reversed([(at(path, str(k)), v) for k, v in value.items()]))
        elif isinstance(value, list):
            stack.extend(reversed([(at(path, i), v) for i, v in enumerate(value)]))

    def position(item: tuple[str, str]) -> int:
        path = "" if item[0] == "document" else item[0]
        while path and path not in order:
            match = _LAST_SEGMENT.search(path)
            path = path[: match.start()] if match else ""
        return order.get(path, 0)

    return sorted(items, key=position)


def type_name(value: Any) -> str:
    """The YAML name of a value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dt.datetime):
        return "timestamp"
    if isinstance(value, dt.date):
        return "date"
    if isinstance(value, dict):
        return "mapping"
    if isinstance(value, list | tuple):
        return "list"
    return type(value).__name__


# Bounded: a collection reached through YAML aliases may be enormous (an alias bomb) or contain itself.
_SHOWN = reprlib.Repr()  # keyword arguments only from Python 3.12
_SHOWN.maxlevel, _SHOWN.maxdict, _SHOWN.maxlist, _SHOWN.maxtuple = 2, 4, 4, 4
_SHOWN.maxstring = _SHOWN.maxother = 60


def shown(value: Any) -> str:
    """A short picture of a bad value for a message."""
    if isinstance(value, int) and value.bit_length() > 14_000:
        return "an integer of more than 4,000 digits"  # Python refuses to print one over 4,300
    if isinstance(value, str):
        text = repr(value)
    elif isinstance(value, dict | list | tuple):
        text = _SHOWN.repr(value)
    else:
        text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def mapping(problems: Problems, path: str, value: Any, allowed: Iterable[str]) -> dict[str, Any] | None:
    """A mapping whose keys are all in ``allowed``; unknown keys are problems at their own path."""
    if not isinstance(value, dict):
        problems.add(path, f"expected a mapping, got {type_name(value)}")
        return None
    allowed = list(allowed)
    for key in value:
        if not isinstance(key, str) or key not in allowed:
            hint = ""
            if isinstance(key, str) and (close := difflib.get_close_matches(key, allowed, n=1)):
                hint = f" (did you mean {close[0]!r}?)"
            problems.add(
                at(path, str(key)),
                f"unknown key{hint}; expected one of {', '.join(allowed)}",
            )
    return value


def sequence(problems: Problems, path: str, value: Any) -> list[Any] | None:
    if not isinstance(value, list):
        problems.add(path, f"expected a list, got {type_name(value)}")
        return None
    return value


def text(
    problems: Problems,
    path: str,
    value: Any,
    *,
    max_length: int | None = None,
    blank: bool = True,
    pattern: str | None = None,
    pattern_hint: str = "",
) -> Any:
    if value is MISSING:
        problems.add(path, "required")
        return INVALID
    if not isinstance(value, str):
        problems.add(path, f"expected a string, got {type_name(value)}")
        return INVALID
    if "\x00" in value:
        # PostgreSQL cannot store NUL characters in text columns.
        problems.add(path, "must not contain NUL characters")
        return INVALID
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            # YAML's "\ud800" escape makes half a surrogate pair, which no database text can hold.
            bad = exc.object[exc.start]
            problems.add(
                path, f"must be valid unicode: {bad!r} at character {exc.start} is half a surrogate pair"
            )
            return INVALID
    if not value.strip() and not blank:
        problems.add(path, "must not be empty")
        return INVALID
    if max_length is not None and len(value) > max_length:
        problems.add(path, f"at most {max_length} characters (got {len(value)})")
        return INVALID
    if pattern is not None and value and not re.fullmatch(pattern, value):
        problems.add(path, f"{shown(value)} is not valid: {pattern_hint or f'must match {pattern}'}")
        return INVALID
    return value


def enum(problems: Problems, path: str, value: Any, choices: Iterable[str]) -> Any:
    choices = list(choices)
    if not isinstance(value, str) or value not in choices:
        problems.add(path, f"unknown value {shown(value)}; expected one of {', '.join(choices)}")
        return INVALID
    return value


def boolean(problems: Problems, path: str, value: Any) -> Any:
    if not isinstance(value, bool):
        problems.add(path, f"expected true or false, got {type_name(value)} {shown(value)}")
        return INVALID
    return value


def number(
    problems: Problems,
    path: str,
    value: Any,
    *,
    greater_than: float | None = None,
    minimum: float | None = None,
) -> Any:
    # A boolean is an int in Python but never a number in a check: `threshold: true` is a mistake.
    if isinstance(value, bool) or not isinstance(value, int | float):
        problems.add(path, f"expected a number, got {type_name(value)} {shown(value)}")
        return INVALID
    try:
        result = float(value)
    except OverflowError:
        result = math.inf
    if not math.isfinite(result):
        problems.add(path, f"expected a finite number, got {shown(value)}")
        return INVALID
    if greater_than is not None and result <= greater_than:
        problems.add(path, f"must be greater than {greater_than:g} (got {shown(value)})")
        return INVALID
    if minimum is not None and result < minimum:
        problems.add(path, f"must be at least {minimum:g} (got {shown(value)})")
        return INVALID
    return result


def integer(problems: Problems, path: str, value: Any, *, minimum: int, maximum: int = MAX_INT) -> Any:
    if isinstance(value, bool) or not isinstance(value, int):
        problems.add(path, f"expected a whole number, got {type_name(value)} {shown(value)}")
        return INVALID
    if not minimum <= value <= maximum:
        bounds = f"at least {minimum}" if maximum == MAX_INT else f"between {minimum} and {maximum}"
        problems.add(path, f"must be {bounds} (got {shown(value)})")
        return INVALID
    return value


def date(problems: Problems, path: str, value: Any) -> Any:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        try:
            parsed = parse_date(value)
        except ValueError:
            parsed = None
        if parsed is not None:
            return parsed
    problems.add(path, f"expected a date like 2027-03-01, got {type_name(value)} {shown(value)}")
    return INVALID


def timestamp(problems: Problems, path: str, value: Any) -> Any:
    """A point in time: a YAML timestamp, a date (midnight UTC) or an ISO 8601 string; naive = UTC."""
    parsed: dt.datetime | None = None
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, dt.date):
        parsed = dt.datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            parsed = parse_datetime(value.replace("z", "Z"))
            if parsed is None and (day := parse_date(value)) is not None:
                parsed = dt.datetime(day.year, day.month, day.day)
        except ValueError:
            parsed = None
    if parsed is None:
        problems.add(
            path,
            f"expected a timestamp like 2026-01-01T00:00:00Z, got {type_name(value)} {shown(value)}",
        )
        return INVALID
    if timezone.is_naive(parsed):
        parsed = parsed.replace(tzinfo=dt.UTC)
    try:
        return parsed.astimezone(dt.UTC)
    except OverflowError:
        problems.add(path, f"{shown(value)} is out of range")
        return INVALID


def email(problems: Problems, path: str, value: Any) -> Any:
    address = text(problems, path, value, max_length=254, blank=False)
    if address is INVALID:
        return INVALID
    try:
        validate_email(address)
    except ValidationError:
        problems.add(path, f"{shown(address)} is not a valid email address")
        return INVALID
    return address


_http_url = URLValidator(schemes=["http", "https"])


def http_url(problems: Problems, path: str, value: Any) -> Any:
    url = text(problems, path, value, max_length=500, blank=False)
    if url is INVALID:
        return INVALID
    try:
        _http_url(url)
    except ValidationError:
        problems.add(path, f"{shown(url)} is not a valid http:// or https:// URL")
        return INVALID
    return url


def duplicates(problems: Problems, items: list[tuple[str, Any]], what: str) -> set[Any]:
    """Report every repeated value (by path of its second and later occurrences); return the seen set."""
    first: dict[Any, str] = {}
    for path, value in items:
        if value in first:
            problems.add(path, f"duplicate {what} {shown(value)} (first at {first[value]})")
        else:
            first[value] = path
    return set(first)
