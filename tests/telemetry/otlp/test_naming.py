"""Metric names and labels from OTLP: always a valid push name and labels, or a rejection."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList

from readiness.telemetry.otlp.naming import Rejection, label_key, labels_of, metric_name, service_of
from readiness.telemetry.push_rules import LABEL_KEY_RE, MAX_LABEL_VALUE, MAX_LABELS, METRIC_RE

SUFFIXES = st.sampled_from([("",), (".count", ".sum", ".p50", ".p90", ".p95", ".p99")])


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("http.server.duration", "http.server.duration"),
        ("Latency-MS", "latency_ms"),
        ("process.runtime.cpython.gc_count", "process.runtime.cpython.gc_count"),
        ("request size (bytes)", "request_size__bytes_"),
        ("ns:metric:rate5m", "ns:metric:rate5m"),
        ("5xx_errors", "m5xx_errors"),
        ("_private", "m_private"),
        (".dotted", "m.dotted"),
        ("café.Temp°", "caf_.temp_"),
        ("\N{KELVIN SIGN}elvin", "m_elvin"),  # not lowercased to an ASCII "k": outside, so "_"
        ("x" * 100, "x" * 100),
    ],
)
def test_metric_names_are_lowercased_with_underscores_and_a_letter_first(raw: str, name: str) -> None:
    assert metric_name(raw) == name


def test_a_metric_name_over_100_characters_rejects_the_data_point() -> None:
    assert isinstance(metric_name("x" * 101), Rejection)
    # A leading digit's "m" counts: 100 characters that need it become 101.
    assert isinstance(metric_name("1" + "x" * 99), Rejection)


def test_the_suffixes_of_a_histogram_count_towards_the_100_characters() -> None:
    suffixes = (".count", ".sum", ".p50")

    assert metric_name("x" * 94, suffixes=suffixes) == "x" * 94
    assert isinstance(metric_name("x" * 95, suffixes=suffixes), Rejection)


def test_an_empty_metric_name_rejects_the_data_point() -> None:
    assert isinstance(metric_name(""), Rejection)


@settings(max_examples=1000)
@given(raw=st.text(max_size=130), suffixes=SUFFIXES)
def test_any_metric_name_becomes_a_valid_push_name_or_a_rejection(
    raw: str, suffixes: tuple[str, ...]
) -> None:
    name = metric_name(raw, suffixes=suffixes)

    if isinstance(name, Rejection):
        assert name.reason
    else:
        for suffix in suffixes:
            assert METRIC_RE.fullmatch(name + suffix), name + suffix


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("route", "route"),
        ("http.route", "http_route"),
        ("HTTP-Status", "http_status"),
        ("_internal", "_internal"),
        ("2xx", "key_2xx"),
        ("k8s.pod.name", "k8s_pod_name"),
        ("x" * 50, "x" * 50),
    ],
)
def test_attribute_keys_become_label_keys(raw: str, key: str) -> None:
    assert label_key(raw) == key


@pytest.mark.parametrize("raw", ["", "x" * 51, "9" + "x" * 46])
def test_an_attribute_key_that_cannot_be_a_label_key_rejects_the_data_point(raw: str) -> None:
    assert isinstance(label_key(raw), Rejection)


@settings(max_examples=1000)
@given(raw=st.text(max_size=70))
def test_any_attribute_key_becomes_a_valid_label_key_or_a_rejection(raw: str) -> None:
    key = label_key(raw)

    assert isinstance(key, Rejection) or LABEL_KEY_RE.fullmatch(key), key


def kv(key: str, value: AnyValue) -> KeyValue:
    return KeyValue(key=key, value=value)


def test_string_attributes_stay_as_they_are_and_others_become_json_text() -> None:
    attributes = [
        kv("route", AnyValue(string_value="/score")),
        kv("code", AnyValue(int_value=200)),
        kv("ratio", AnyValue(double_value=0.25)),
        kv("cached", AnyValue(bool_value=True)),
        kv("raw", AnyValue(bytes_value=b"\x00\x01")),
        kv(
            "tags",
            AnyValue(array_value=ArrayValue(values=[AnyValue(string_value="a"), AnyValue(int_value=1)])),
        ),
        kv("meta", AnyValue(kvlist_value=KeyValueList(values=[kv("k", AnyValue(string_value="v"))]))),
        kv("unset", AnyValue()),
    ]

    labels = labels_of(attributes, service="fraud-api")

    assert labels == {
        "service": "fraud-api",
        "route": "/score",
        "code": "200",
        "ratio": "0.25",
        "cached": "true",
        "raw": '"AAE="',
        "tags": '["a",1]',
        "meta": '{"k":"v"}',
        "unset": "null",
    }


def test_a_service_name_the_push_would_refuse_rejects_the_data_point() -> None:
    service = service_of([kv("service.name", AnyValue(string_value="s" * (MAX_LABEL_VALUE + 1)))])

    assert isinstance(labels_of([], service=service), Rejection)


def test_without_a_service_name_there_is_no_service_label() -> None:
    assert labels_of([kv("route", AnyValue(string_value="/a"))], service=None) == {"route": "/a"}


def test_ten_labels_are_accepted_and_eleven_reject_the_data_point() -> None:
    nine = [kv(f"a{i}", AnyValue(string_value="x")) for i in range(9)]

    assert len(labels_of(nine, service="fraud-api")) == MAX_LABELS
    assert isinstance(
        labels_of([*nine, kv("a9", AnyValue(string_value="x"))], service="fraud-api"), Rejection
    )
    assert len(labels_of([*nine, kv("a9", AnyValue(string_value="x"))], service=None)) == MAX_LABELS


@pytest.mark.parametrize(
    "attributes",
    [
        [kv("note", AnyValue(string_value="x" * (MAX_LABEL_VALUE + 1)))],
        [kv("note", AnyValue(string_value="a\x00b"))],
        [kv("ratio", AnyValue(double_value=float("nan")))],
        [kv("ratio", AnyValue(array_value=ArrayValue(values=[AnyValue(double_value=float("inf"))])))],
        # Two attributes, or one and service.name, that would become one label.
        [kv("http.route", AnyValue(string_value="/a")), kv("http_route", AnyValue(string_value="/b"))],
        [kv("service", AnyValue(string_value="other"))],
    ],
)
def test_a_label_the_push_would_refuse_rejects_the_data_point(attributes: list[KeyValue]) -> None:
    assert isinstance(labels_of(attributes, service="fraud-api"), Rejection)


def test_a_label_value_of_exactly_200_characters_is_accepted() -> None:
    labels = labels_of([kv("note", AnyValue(string_value="x" * MAX_LABEL_VALUE))], service=None)

    assert labels == {"note": "x" * MAX_LABEL_VALUE}


ANY_VALUES = st.recursive(
    st.builds(AnyValue, string_value=st.text(max_size=30))
    | st.builds(AnyValue, int_value=st.integers(-(2**63), 2**63 - 1))
    | st.builds(AnyValue, double_value=st.floats())
    | st.builds(AnyValue, bool_value=st.booleans())
    | st.builds(AnyValue, bytes_value=st.binary(max_size=20))
    | st.just(AnyValue()),
    lambda children: (
        st.builds(lambda values: AnyValue(array_value=ArrayValue(values=values)), st.lists(children))
        | st.builds(
            lambda pairs: AnyValue(kvlist_value=KeyValueList(values=[kv(k, v) for k, v in pairs])),
            st.lists(st.tuples(st.text(max_size=10), children), max_size=4),
        )
    ),
    max_leaves=6,
)


@settings(max_examples=200, deadline=None)
@given(
    attributes=st.lists(st.builds(kv, st.text(max_size=60), ANY_VALUES), max_size=11),
    resource=st.lists(st.builds(kv, st.sampled_from(["service.name", "host.name"]), ANY_VALUES), max_size=3),
)
def test_any_attributes_become_valid_labels_or_a_rejection(
    attributes: list[KeyValue], resource: list[KeyValue]
) -> None:
    labels = labels_of(attributes, service=service_of(resource))

    if isinstance(labels, Rejection):
        assert labels.reason
        return
    assert len(labels) <= MAX_LABELS
    for key, value in labels.items():
        assert LABEL_KEY_RE.fullmatch(key)
        assert isinstance(value, str)
        assert "\x00" not in value
        assert len(value) <= MAX_LABEL_VALUE
