"""Bodies with more structure than a real batch are read a chunk of points at a time
(readiness/telemetry/push_reader.py): each is answered from what the first limit it breaks says,
without building the rest, and any body is judged exactly as when it is parsed whole."""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from readiness.telemetry.push import (
    WHOLE_BODY_STRUCTURE,
    ParsedPush,
    Problems,
    PushInvalid,
    document_points,
    encode_points,
    parse_push,
    read_points,
    structure_of,
)
from readiness.telemetry.push_reader import CHUNK_POINTS
from tests.faults.test_push_fuzz import body_of, documents, valid_points

NOW = dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.UTC)
FIVE_MIB = 5 * 1024 * 1024 - 64
UNKNOWN = [f"u{i}" for i in range(60)]
# A valid point with all the structure a point may have (25 commas and colons): 9,000 of them are
# more than a body parsed whole may hold.
FULL_POINT = orjson.dumps({"metric": "m", "value": 1, "labels": {f"k{i}": "v" for i in range(10)}})


def chunked(raw: bytes) -> ParsedPush:
    problems = Problems()
    return encode_points(read_points(raw, problems), problems, now=NOW)


def whole(raw: bytes) -> ParsedPush:
    return encode_points(document_points(raw), Problems(), now=NOW)


def refusal(raw: bytes) -> PushInvalid:
    assert structure_of(raw) > WHOLE_BODY_STRUCTURE  # the body takes the chunked path
    with pytest.raises(PushInvalid) as err:
        parse_push(raw, now=NOW)
    return err.value


def filled(prefix: bytes, item: bytes, suffix: bytes) -> bytes:
    count = (FIVE_MIB - len(prefix) - len(suffix)) // (len(item) + 1)
    return prefix + b",".join([item] * count) + suffix


def outcome(read: Any, raw: bytes) -> bytes | str:
    try:
        return read(raw).rows
    except PushInvalid:
        return "refused"


# --- The same verdict, read whole or in chunks ------------------------------------------------------


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=documents.map(body_of) | st.binary(max_size=100))
def test_any_body_is_judged_the_same_read_in_chunks(raw: bytes) -> None:
    assert outcome(chunked, raw) == outcome(whole, raw)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kinds=st.lists(valid_points, min_size=1, max_size=8),
    count=st.integers(min_value=CHUNK_POINTS - 1, max_value=2 * CHUNK_POINTS + 2),
)
def test_a_valid_batch_across_chunks_is_encoded_the_same(kinds: list[dict[str, Any]], count: int) -> None:
    raw = body_of({"points": [kinds[i % len(kinds)] for i in range(count)]})
    pretty = orjson.dumps(orjson.loads(raw), option=orjson.OPT_INDENT_2)  # whitespace between all
    assert chunked(raw) == whole(raw) == chunked(pretty)
    assert chunked(raw).count == count


# --- Hostile bodies: one problem, read no further ---------------------------------------------------


def test_one_point_with_150000_labels_is_one_problem() -> None:
    point = {"metric": "m", "value": 1, "labels": {f"k{i}": "v" for i in range(150_000)}}
    err = refusal(orjson.dumps({"points": [point]}))
    assert err.details == [{"index": 0, "field": "labels", "message": "at most 10 pairs"}]
    assert err.message == (
        "invalid point: nothing was stored; validation stopped at point 0, whose size no valid point has"
    )


def test_problems_before_a_point_too_large_to_read_are_kept() -> None:
    huge = {"metric": "m", "value": 1, "labels": {f"k{i}": "v" for i in range(150_000)}}
    points = [{"metric": "m", "value": "x"}, {"metric": "m", "value": 1}, huge]
    err = refusal(orjson.dumps({"points": points}))
    assert err.details == [
        {"index": 0, "field": "value", "message": "must be a number"},
        {"index": 2, "field": "labels", "message": "at most 10 pairs"},
    ]


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        (
            filled(b'{"points":[', b'{"metric":"m","value":1,"extra":[' + b"[0]," * 20 + b"0]}", b"]}"),
            {"index": 0, "field": "extra", "message": "unknown field"},
        ),
        (
            orjson.dumps({"points": [{"metric": "m", "value": 1, **dict.fromkeys(UNKNOWN, 0)}] * 9_000}),
            {"index": 0, "field": "u0", "message": "unknown field"},
        ),
        (
            filled(b'{"points":[', b"[" * 500 + b"]" * 500, b"]}"),
            {"index": 0, "field": "", "message": "a point must be an object"},
        ),
        (
            filled(b'{"points":[{"metric":"m","value":', b"[[0]]", b"]}]}"),
            {"index": 0, "field": "value", "message": "must be a number"},
        ),
        (
            filled(b'{"points":[{"metric":"m","value":1,"labels":{"a":', b"{}", b"}}]}"),
            {"index": 0, "field": "labels.a", "message": "values must be strings"},
        ),
        (
            filled(b'{"points":[{"metric":"m","value":1,"labels":[', b'"a"', b"]}]}"),
            {"index": 0, "field": "labels", "message": "must be an object of string values"},
        ),
        (
            filled(b'{"points":[{', b'"metric":"m"', b"}]}"),
            {"index": 0, "field": "metric", "message": "appears more than once"},
        ),
    ],
    ids=[
        "deep unknown field",
        "sixty unknown fields per point",
        "deep nesting",
        "value nested too deep",
        "label value nested",
        "labels a huge list",
        "one field repeated",
    ],
)
def test_a_value_too_large_to_be_a_point_is_its_points_only_problem(
    raw: bytes, detail: dict[str, Any]
) -> None:
    err = refusal(raw)
    assert err.details == [detail]
    assert "validation stopped at point 0" in err.message


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (filled(b'{"points":[', b"{}", b"]}"), '"points" must hold 1 to 10,000 points, got more than 10,000'),
        (filled(b'{"points":[', b"0", b"]}"), '"points" must hold 1 to 10,000 points, got more than 10,000'),
        (filled(b"[", b"0", b"]"), 'the body must be a JSON object {"points": [...]}'),
        (filled(b'{"points":{', b'"a":0', b"}}"), '"points" must be a list of 1 to 10,000 points'),
        (
            filled(b'{"points":[{"metric":"m","value":1}],"points":[', b"0", b"]}"),
            '"points" appears more than once',
        ),
        (
            filled(b"{", b'"x":0', b',"points":[{"metric":"m","value":1}]}'),
            "unknown field(s): x and more",
        ),
    ],
    ids=["objects", "zeros", "not an object", "points not a list", "points twice", "unknown fields"],
)
def test_a_body_too_large_to_be_a_batch_is_refused_whole(raw: bytes, message: str) -> None:
    assert refusal(raw).message == message


def test_a_point_that_is_not_json_is_named() -> None:
    points = [FULL_POINT] * 10_000
    points[300] = b'{"metric":"m","value":NaN}'
    err = refusal(b'{"points":[' + b",".join(points) + b"]}")
    assert err.message.startswith("the body is not valid JSON: ")
    assert err.message.endswith(" in point 300")


@pytest.mark.parametrize(
    "tail",
    [b"]}x", b"]", b"],}", b'] "points"}', b",]}"],
    ids=["data after the object", "unclosed object", "trailing comma", "missing comma", "empty point"],
)
def test_a_body_that_ends_badly_is_not_json(tail: bytes) -> None:
    raw = b'{"points":[' + b",".join([FULL_POINT] * 9_000) + tail
    assert refusal(raw).message.startswith("the body is not valid JSON: unexpected ")


def test_a_valid_batch_read_in_chunks_is_accepted() -> None:
    labels = {f"label_{i}": "x" * 30 for i in range(10)}
    point = {"metric": "latency_ms", "value": 182.5, "ts": "2026-11-22T09:00:00Z", "labels": labels}
    raw = orjson.dumps({"points": [point] * 10_000})
    assert structure_of(raw) > WHOLE_BODY_STRUCTURE
    parsed = parse_push(raw, now=NOW)
    assert parsed.count == 10_000
    assert parsed.rows == whole(raw).rows
