"""Hypothesis against the push: whatever bytes and JSON shapes arrive (wrong types, huge and tiny
numbers, NaN and Infinity literals, unicode, deep nesting, duplicate keys, wrong content types), the
parser accepts or refuses with a clear problem, the endpoint answers 202 or a 4xx in the one error
shape, and what it accepts the database stores exactly as sent: a point PostgreSQL cannot hold must
be refused before the 202, never fail every apply after it."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from readiness.projects.services import token_create
from readiness.security.rates import parse_rate
from readiness.telemetry.models import IngestBatch, MetricPoint
from readiness.telemetry.provenance import is_reserved
from readiness.telemetry.push import LABEL_KEY_RE, MAX_POINTS, METRIC_RE, PushInvalid, parse_push
from readiness.telemetry.services import batch_ingest
from tests.factories import ProjectFactory

NOW = dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.UTC)
FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


# --- A JSON writer that can say what json.dumps will not ------------------------------------------


@dataclass(frozen=True)
class Raw:
    """JSON text spliced in as it is: NaN and Infinity literals, numbers no float holds, deep nesting."""

    text: str


@dataclass(frozen=True)
class Pairs:
    """An object written pair by pair, so a key may appear twice."""

    items: tuple[tuple[str, Any], ...]


def encode(value: Any) -> str:
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, Pairs | dict):
        items = value.items if isinstance(value, Pairs) else tuple(value.items())
        return "{" + ",".join(f"{json.dumps(k, ensure_ascii=False)}:{encode(v)}" for k, v in items) + "}"
    if isinstance(value, list):
        return "[" + ",".join(encode(item) for item in value) + "]"
    return json.dumps(value, ensure_ascii=False)  # floats: NaN and Infinity come out as literals


def body_of(value: Any) -> bytes:
    # surrogatepass: a lone surrogate in generated text becomes bytes that are not UTF-8, as sent.
    return encode(value).encode("utf-8", "surrogatepass")


LITERALS = ["NaN", "-NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1e-400", "-0", "0e0", "1E+2"]
numbers = (
    st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.sampled_from(LITERALS).map(Raw)
    | st.sampled_from(["9" * 30, "1" + "0" * 400, "0." + "0" * 400 + "1"]).map(Raw)
)
scalars = st.none() | st.booleans() | numbers | st.text(max_size=12)
junk = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
)
metrics = st.from_regex(METRIC_RE, fullmatch=True) | st.sampled_from(["", "A", "1a", "a" * 101, "é", "a b"])
offsets = st.timedeltas(
    min_value=-dt.timedelta(hours=23, minutes=59, seconds=59), max_value=dt.timedelta(hours=23, minutes=59)
).map(dt.timezone)
times = st.datetimes(
    min_value=(NOW - dt.timedelta(days=399)).replace(tzinfo=None),
    max_value=(NOW + dt.timedelta(minutes=4)).replace(tzinfo=None),
    timezones=st.just(dt.UTC),
)
in_window = st.builds(lambda t, tz: t.astimezone(tz), times, offsets)
iso_texts = st.builds(
    lambda t, form: {
        "iso": t.isoformat(),
        "seconds": t.isoformat(timespec="seconds"),
        "basic": t.strftime("%Y%m%dT%H%M%S%z"),
        "z": t.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
    }[form],
    in_window,
    st.sampled_from(["iso", "seconds", "basic", "z"]),
)
timestamps = iso_texts | st.sampled_from(
    ["2026-11-22T10:00:00", "2026-02-30T00:00:00Z", "1999-01-01T00:00Z", "x"]
)
label_values = st.text(max_size=220) | st.sampled_from(["\x00", "a\x00b", "\\", '\\"', "\u2028", "\t\n\r"])
labels = st.dictionaries(
    st.from_regex(LABEL_KEY_RE, fullmatch=True) | st.text(max_size=6), label_values, max_size=11
)
points = st.fixed_dictionaries(
    {"metric": metrics | junk, "value": numbers | junk},
    optional={"ts": timestamps | junk, "labels": labels | junk, "extra": junk},
)
duplicated = st.builds(
    lambda pairs: Pairs(tuple(pairs)),
    st.lists(st.tuples(st.sampled_from(["metric", "value", "ts", "labels"]), scalars | metrics), max_size=6),
)
label_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=200
)
valid_points = st.fixed_dictionaries(
    {
        # health.* names are valid text but reserved for the probes: a push of one is refused.
        "metric": st.from_regex(METRIC_RE, fullmatch=True).filter(lambda name: not is_reserved(name)),
        "value": st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(2**70), 2**70),
    },
    optional={
        "ts": iso_texts,
        "labels": st.dictionaries(st.from_regex(LABEL_KEY_RE, fullmatch=True), label_text, max_size=10),
    },
)
documents = (
    st.fixed_dictionaries({"points": st.lists(points | duplicated | junk, max_size=4)})
    | st.fixed_dictionaries({"points": st.lists(valid_points | points, min_size=1, max_size=4)})
    | st.builds(lambda a, b: Pairs((("points", a), ("points", b))), st.lists(points, max_size=2), junk)
    | st.integers(min_value=1, max_value=3_000).map(lambda n: Raw("[" * n + "]" * n))
    | st.integers(min_value=1, max_value=3_000).map(
        lambda n: Raw('{"points":' + '{"a":' * n + "1" + "}" * (n + 1))
    )
    | junk
)
bodies = documents.map(body_of) | st.binary(max_size=200)
CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "Application/JSON",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/json-patch+json",
    "",
]


# --- The parser -------------------------------------------------------------------------------------


@settings(FUZZ, max_examples=600)
@given(body=bodies)
def test_the_parser_accepts_any_body_or_refuses_it_with_a_clear_problem(
    cases: Counter[str], body: bytes
) -> None:
    try:
        parsed = parse_push(body, now=NOW)
    except PushInvalid as exc:
        cases["refused"] += 1
        assert isinstance(exc.message, str) and exc.message
        for detail in exc.details:
            assert set(detail) == {"index", "field", "message"}
            assert isinstance(detail["index"], int) and isinstance(detail["field"], str) and detail["message"]
    else:
        cases["accepted"] += 1
        assert 1 <= parsed.count <= MAX_POINTS
        assert parsed.rows.count(b"\n") == parsed.count


# --- The endpoint -----------------------------------------------------------------------------------


@pytest.fixture
def pusher(db: None, settings: Any) -> Client:
    # High enough that hundreds of examples never meet the per-token limit; the limiter stays on.
    settings.READINESS_API_RATE_LIMIT = parse_rate("1000000/s")
    _, secret = token_create(project=ProjectFactory(), name="fuzz", scopes=["metrics:write"])
    return Client(headers={"Authorization": f"Bearer {secret}"})


@FUZZ
@given(body=bodies, content_type=st.sampled_from(CONTENT_TYPES))
def test_every_push_is_answered_202_or_a_4xx_in_the_error_shape(
    pusher: Client, cases: Counter[str], body: bytes, content_type: str
) -> None:
    response = pusher.post("/api/v1/metrics", body, content_type=content_type)
    cases[str(response.status_code)] += 1
    assert response["Content-Type"] == "application/json"
    answer = orjson.loads(response.content)
    if content_type.split(";")[0].strip().lower() != "application/json":
        assert response.status_code == 415
    if response.status_code == 202:
        assert set(answer) == {"batch_id", "accepted"} and answer["accepted"] >= 1
        return
    assert response.status_code in {400, 415}, response.content
    assert set(answer) == {"error"} and set(answer["error"]) == {"code", "message", "details"}
    assert isinstance(answer["error"]["message"], str) and answer["error"]["message"]
    if response.status_code == 400:
        assert isinstance(answer["error"]["details"], list)


# --- What is accepted is stored, exactly --------------------------------------------------------------


@FUZZ
@given(sent=st.lists(valid_points, min_size=1, max_size=5))
def test_every_valid_point_is_accepted_and_stored_exactly_as_sent(
    db: None, cases: Counter[str], sent: list[dict[str, Any]]
) -> None:
    project = ProjectFactory()
    body = body_of({"points": sent})
    batch_id, accepted, _ = batch_ingest(project_id=project.pk, body=body, source="push:fuzz", now=NOW)
    assert accepted == len(sent)
    # The database took every row it was promised, in the request itself (a refusal would leave the
    # batch pending for the worker to set aside).
    assert IngestBatch.objects.get(pk=batch_id).state == IngestBatch.State.DONE
    stored = list(
        MetricPoint.objects.filter(project=project).order_by("id").values("metric", "value", "ts", "labels")
    )
    expected = [
        {
            "metric": point["metric"],
            "value": float(json.loads(json.dumps(point["value"]))),
            "ts": dt.datetime.fromisoformat(point["ts"]) if "ts" in point else NOW,
            "labels": point.get("labels", {}),
        }
        for point in json.loads(body)["points"]
    ]
    assert stored == expected
    cases["stored exactly"] += 1


# --- Regressions: points Python accepts and PostgreSQL refused after the 202 ---------------------------


def test_a_label_value_with_a_nul_character_is_refused_before_the_202(pusher: Client) -> None:
    body = orjson.dumps({"points": [{"metric": "m", "value": 1.0, "labels": {"model": "a\x00b"}}]})
    response = pusher.post("/api/v1/metrics", body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["details"] == [
        {"index": 0, "field": "labels.model", "message": "must not contain the NUL character"}
    ]


@pytest.mark.parametrize(
    "ts",
    ["2026-11-22T09:00:00+23:59", "2026-11-21T09:00:00-23:30", "2026-11-22T09:00:00+05:30:15.000001"],
    ids=["offset beyond 15:59", "negative offset beyond 15:59", "offset with seconds"],
)
def test_a_time_with_an_offset_postgresql_does_not_know_is_stored_in_utc(db: None, ts: str) -> None:
    project = ProjectFactory()
    body = orjson.dumps({"points": [{"metric": "m", "value": 1.0, "ts": ts}]})
    batch_id, _, _ = batch_ingest(project_id=project.pk, body=body, source="push:fuzz", now=NOW)
    assert IngestBatch.objects.get(pk=batch_id).state == IngestBatch.State.DONE
    assert MetricPoint.objects.get(project=project).ts == dt.datetime.fromisoformat(ts)
