"""Every validation rule of a metrics push (PRODUCT.md §3), on the parser alone."""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from readiness.telemetry.push import PushInvalid, parse_push

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)


def body(*points: Any) -> bytes:
    return orjson.dumps({"points": list(points)})


def rejection(raw: bytes) -> PushInvalid:
    with pytest.raises(PushInvalid) as err:
        parse_push(raw, now=NOW)
    return err.value


def test_a_valid_push_encodes_every_point() -> None:
    parsed = parse_push(
        body(
            {
                "metric": "latency_ms",
                "value": 182.5,
                "ts": "2026-11-22T10:00:00Z",
                "labels": {"model_version": "7"},
            },
            {"metric": "accuracy", "value": 1},
        ),
        now=NOW,
    )
    assert parsed.count == 2
    first, second = parsed.rows.decode().splitlines()
    assert first == 'latency_ms\t2026-11-22T10:00:00+00:00\t182.5\t{"model_version":"7"}'
    assert second == "accuracy\t2026-11-22T12:00:00+00:00\t1.0\t{}"  # ts defaults to server time


@pytest.mark.parametrize(
    ("point", "field"),
    [
        ({"metric": "Latency", "value": 1}, "metric"),
        ({"metric": "9lives", "value": 1}, "metric"),
        ({"metric": "a" * 101, "value": 1}, "metric"),
        ({"metric": "", "value": 1}, "metric"),
        ({"metric": "has space", "value": 1}, "metric"),
        ({"value": 1}, "metric"),
        ({"metric": "m", "value": "1.0"}, "value"),
        ({"metric": "m", "value": True}, "value"),
        ({"metric": "m", "value": None}, "value"),
        ({"metric": "m"}, "value"),
        ({"metric": "m", "value": 1, "ts": "yesterday"}, "ts"),
        ({"metric": "m", "value": 1, "ts": "2026-11-22T10:00:00"}, "ts"),
        ({"metric": "m", "value": 1, "ts": 1763805600}, "ts"),
        ({"metric": "m", "value": 1, "ts": "2026-11-22T12:05:00.000001Z"}, "ts"),
        ({"metric": "m", "value": 1, "ts": "2025-10-17T11:59:59Z"}, "ts"),
        ({"metric": "m", "value": 1, "labels": ["a"]}, "labels"),
        ({"metric": "m", "value": 1, "labels": {f"k{i}": "v" for i in range(11)}}, "labels"),
        ({"metric": "m", "value": 1, "labels": {"Model": "7"}}, "labels.Model"),
        ({"metric": "m", "value": 1, "labels": {"v": 7}}, "labels.v"),
        ({"metric": "m", "value": 1, "labels": {"v": "x" * 201}}, "labels.v"),
        ({"metric": "m", "value": 1, "unit": "ms"}, "unit"),
    ],
)
def test_a_bad_point_is_reported_with_its_index_and_field(point: dict[str, Any], field: str) -> None:
    err = rejection(body({"metric": "ok", "value": 1}, point))
    assert {"index": 1, "field": field} in [{"index": d["index"], "field": d["field"]} for d in err.details]


@pytest.mark.parametrize(
    "point",
    [
        {"metric": "m", "value": 1, "ts": "2026-11-22T12:05:00Z"},  # exactly 5 minutes ahead
        {"metric": "m", "value": 1, "ts": "2025-10-18T12:00:00Z"},  # exactly 400 days old
        {"metric": "a" * 100, "value": 1},
        {"metric": "m", "value": 1, "labels": {f"k{i}": "v" * 200 for i in range(10)}},
        {"metric": "m.sub:x_1", "value": -1e300, "ts": "2026-11-22T13:00:00+01:00"},
    ],
)
def test_edges_of_the_rules_are_accepted(point: dict[str, Any]) -> None:
    assert parse_push(body(point), now=NOW).count == 1


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"{",
        b'{"points": [{"metric": "m", "value": NaN}]}',
        b'{"points": [{"metric": "m", "value": Infinity}]}',
        b'{"points": [{"metric": "m", "value": -Infinity}]}',
        b'{"points": [{"metric": "m", "value": 1e400}]}',
        b'{"points": [{"metric": "m", "value": 1' + b"0" * 400 + b"}]}",
        b"[]",
        b'{"points": []}',
        b'{"points": {}}',
        b'{"points": [1]}',
        b'{"points": [{"metric": "m", "value": 1}], "extra": 1}',
    ],
)
def test_malformed_bodies_are_rejected(raw: bytes) -> None:
    assert rejection(raw).message


def test_ten_thousand_points_are_accepted_and_one_more_is_not() -> None:
    point = {"metric": "m", "value": 1}
    assert parse_push(body(*[point] * 10_000), now=NOW).count == 10_000
    assert "10,000" in rejection(body(*[point] * 10_001)).message


def test_every_bad_point_is_reported_not_only_the_first() -> None:
    err = rejection(
        body({"metric": "m", "value": "x"}, {"metric": "m", "value": 1}, {"metric": "M", "value": 1})
    )
    assert [d["index"] for d in err.details] == [0, 2]


@pytest.mark.parametrize(
    ("point", "detail"),
    [
        (
            {"metric": "Bad", "value": "x", "labels": {f"Key{i}": 7 for i in range(11)}},
            {"index": 0, "field": "labels", "message": "at most 10 pairs"},
        ),
        (
            {"metric": "Bad", "value": "x", "unit": "ms", "host": "a", "zone": "b"},
            {"index": 0, "field": "host", "message": "unknown field (2 more unknown fields)"},
        ),
    ],
    ids=["eleven labels", "unknown fields"],
)
def test_a_point_breaking_a_limit_is_one_problem(point: dict[str, Any], detail: dict[str, Any]) -> None:
    # Nothing else of the point is looked at: not its metric or value, not each of its labels.
    assert rejection(body(point)).details == [detail]


def test_details_stop_at_a_hundred_and_the_message_counts_the_rest() -> None:
    err = rejection(body(*[{"metric": "m", "value": "high"}] * 10_000))
    assert len(err.details) == 100
    assert err.details[-1] == {"index": 99, "field": "value", "message": "must be a number"}
    assert err.message == (
        "invalid points: nothing was stored; the first 100 problems are listed, and 9,900 more"
    )


def test_unknown_fields_of_the_body_are_named_at_most_a_hundred_times() -> None:
    raw = orjson.dumps({"points": [{"metric": "m", "value": 1}], **{f"x{i:04}": 1 for i in range(5_000)}})
    err = rejection(raw)
    assert err.message == "unknown field(s): x0000, x0001, x0002, x0003, x0004 and 4,995 more"
    assert len(err.details) == 100
    assert err.details[0] == {"index": -1, "field": "x0000", "message": "unknown field"}


def test_a_name_longer_than_any_valid_one_is_cut_in_details() -> None:
    err = rejection(body({"metric": "m", "value": 1, "labels": {"K" * 100_000: "v"}}))
    assert err.details == [
        {"index": 0, "field": "labels." + "K" * 64 + "…", "message": "keys are [a-z_][a-z0-9_]{0,49}"}
    ]


def test_backslashes_in_labels_survive_the_copy_encoding() -> None:
    parsed = parse_push(body({"metric": "m", "value": 1, "labels": {"path": "C:\\models\t7"}}), now=NOW)
    labels_field = parsed.rows.decode().rstrip("\n").split("\t")[3]
    assert "\t" not in labels_field  # JSON escaped the tab: the row keeps four columns
    assert orjson.loads(labels_field.replace("\\\\", "\\")) == {"path": "C:\\models\t7"}


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(
    points=st.lists(st.dictionaries(st.sampled_from(["metric", "value", "ts", "labels", "x"]), json_values))
)
def test_any_json_push_is_accepted_or_rejected_cleanly(points: list[dict[str, Any]]) -> None:
    try:
        parsed = parse_push(orjson.dumps({"points": points}), now=NOW)
    except PushInvalid as exc:
        assert exc.message
        assert all({"index", "field", "message"} <= set(d) for d in exc.details)
    else:
        assert parsed.count == len(points) >= 1
