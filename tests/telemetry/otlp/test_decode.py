"""Decoding OTLP/HTTP bodies: media types, gzip, limits, and every bad body as a typed refusal."""

from __future__ import annotations

import gzip
import json
import time
import tracemalloc
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from readiness.telemetry.otlp import (
    BodyTooLarge,
    DecodedExport,
    Encoding,
    ExportRefused,
    UndecodableBody,
    UnsupportedMediaType,
    decode_export,
)
from readiness.telemetry.push_rules import MAX_BODY_BYTES
from tests.telemetry.otlp.sdk import BODY_FORMS, body_of, instrumented

PROTOBUF, JSON = "application/x-protobuf", "application/json"


@pytest.fixture(scope="module")
def sdk_export() -> ExportMetricsServiceRequest:
    sdk = instrumented()
    sdk.meter.create_counter("http.server.requests").add(3, {"route": "/score"})
    sdk.meter.create_histogram("latency_ms").record(42.0)
    sdk.meter.create_gauge("accuracy").set(0.93)
    return sdk.export()


def request_of_size(size: int) -> bytes:
    """A valid serialized export of exactly ``size`` bytes (one long resource attribute)."""
    request = ExportMetricsServiceRequest()
    attribute = request.resource_metrics.add().resource.attributes.add(key="padding")
    attribute.value.string_value = ""
    overhead = len(request.SerializeToString())
    # The length prefixes grow with the string; settle the padding in a few rounds.
    padding = size - overhead
    for _ in range(5):
        attribute.value.string_value = "x" * padding
        padding += size - len(request.SerializeToString())
    body = request.SerializeToString()
    assert len(body) == size
    return body


@pytest.mark.parametrize("form", BODY_FORMS)
def test_every_body_form_of_an_sdk_export_decodes_to_the_same_request(
    form: str, sdk_export: ExportMetricsServiceRequest
) -> None:
    body, content_type, content_encoding = body_of(sdk_export, form)

    decoded = decode_export(body=body, content_type=content_type, content_encoding=content_encoding)

    assert decoded.request == sdk_export
    assert decoded.encoding is (Encoding.JSON if form.startswith("json") else Encoding.PROTOBUF)


@pytest.mark.parametrize(
    ("content_type", "encoding"),
    [
        ("application/x-protobuf", Encoding.PROTOBUF),
        ("Application/X-Protobuf", Encoding.PROTOBUF),
        ("application/x-protobuf; proto=opentelemetry.proto.collector.metrics.v1", Encoding.PROTOBUF),
        ("application/json", Encoding.JSON),
        ("application/json; charset=utf-8", Encoding.JSON),
        ('application/json;charset="UTF-8"', Encoding.JSON),
        ("  APPLICATION/JSON ; charset=utf8", Encoding.JSON),
    ],
)
def test_the_content_type_may_carry_parameters_and_any_case(content_type: str, encoding: Encoding) -> None:
    body = b"{}" if encoding is Encoding.JSON else b""

    assert decode_export(body=body, content_type=content_type).encoding is encoding


@pytest.mark.parametrize(
    "content_type",
    [None, "", "text/plain", "application/grpc", "application/protobuf", "application/json; charset=latin-1"],
)
def test_any_other_content_type_is_unsupported(content_type: str | None) -> None:
    with pytest.raises(UnsupportedMediaType) as refused:
        decode_export(body=b"{}", content_type=content_type)
    assert refused.value.status == 415


@pytest.mark.parametrize("content_encoding", ["br", "deflate", "zstd", "gzip, gzip", "compress"])
def test_a_content_encoding_other_than_gzip_is_unsupported(content_encoding: str) -> None:
    with pytest.raises(UnsupportedMediaType) as refused:
        decode_export(body=gzip.compress(b"{}"), content_type=JSON, content_encoding=content_encoding)
    assert refused.value.status == 415


@pytest.mark.parametrize("content_encoding", ["identity", "", "GZIP", "x-gzip"])
def test_identity_and_gzip_in_any_spelling_are_accepted(content_encoding: str) -> None:
    body = b"{}" if content_encoding in {"identity", ""} else gzip.compress(b"{}")

    decoded = decode_export(body=body, content_type=JSON, content_encoding=content_encoding)

    assert decoded.request == ExportMetricsServiceRequest()


@pytest.mark.parametrize(
    "body",
    [
        b"\xff\xff\xff\xff",  # a field tag with no end
        b"\x0a\x05abc",  # a length prefix longer than the rest
        b"\x0a\x02\x0a\x05",  # a nested message cut short
        b"\x0a\x03\x0a\x01\xff",  # ResourceMetrics.resource: invalid bytes inside
    ],
)
def test_undecodable_protobuf_is_refused_as_400(body: bytes) -> None:
    with pytest.raises(UndecodableBody) as refused:
        decode_export(body=body, content_type=PROTOBUF)
    assert refused.value.status == 400


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b'{"resourceMetrics": [',
        b'{"resourceMetrics": 5}',
        b'{"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"name": 7}]}]}]}',
        b'"a string"',
        b"[]",
        b"null",
        b'{"resourceMetrics": [], "resourceMetrics": []}',  # duplicate keys
        b'{"resourceMetrics": "\xff"}',  # not UTF-8
        b'{"a": ' * 100_000 + b"1" + b"}" * 100_000,  # nesting beyond any parser's recursion
        b"\xef\xbb\xbf{}",  # a byte order mark, which JSON forbids
    ],
)
def test_invalid_json_is_refused_as_400(body: bytes) -> None:
    with pytest.raises(UndecodableBody) as refused:
        decode_export(body=body, content_type=JSON)
    assert refused.value.status == 400


def test_json_fields_may_use_otlp_camel_case_or_proto_names_and_unknown_ones_are_ignored() -> None:
    document = {
        "resource_metrics": [
            {
                "scopeMetrics": [
                    {
                        "metrics": [
                            {
                                "name": "accuracy",
                                "gauge": {
                                    "dataPoints": [{"asDouble": 0.5, "timeUnixNano": "1", "newField": 1}]
                                },
                            }
                        ]
                    }
                ],
                "someFutureField": {"x": 1},
            }
        ]
    }

    request = decode_export(body=json.dumps(document).encode(), content_type=JSON).request

    point = request.resource_metrics[0].scope_metrics[0].metrics[0].gauge.data_points[0]
    assert (point.as_double, point.time_unix_nano) == (0.5, 1)


@pytest.mark.parametrize(
    "body",
    [
        b"\x1f\x8b\x08\x00garbage",
        gzip.compress(b"{}")[:-4],  # truncated trailer
        gzip.compress(b"{}")[:10],  # header only
        b"",
        zlib.compress(b"{}"),  # zlib, not gzip
        gzip.compress(b"{}") + b"\x00\x00",  # trailing bytes that are not a gzip member
    ],
)
def test_a_corrupt_or_truncated_gzip_body_is_refused_as_400(body: bytes) -> None:
    with pytest.raises(UndecodableBody):
        decode_export(body=body, content_type=JSON, content_encoding="gzip")


def test_several_gzip_members_are_one_body(sdk_export: ExportMetricsServiceRequest) -> None:
    body = sdk_export.SerializeToString()
    half = len(body) // 2

    decoded = decode_export(
        body=gzip.compress(body[:half]) + gzip.compress(body[half:]),
        content_type=PROTOBUF,
        content_encoding="gzip",
    )

    assert decoded.request == sdk_export


@pytest.mark.parametrize("content_encoding", [None, "gzip"])
def test_a_body_of_exactly_5_mib_decodes_and_one_byte_more_is_413(content_encoding: str | None) -> None:
    def send(body: bytes) -> DecodedExport:
        if content_encoding:
            body = gzip.compress(body)
        return decode_export(body=body, content_type=PROTOBUF, content_encoding=content_encoding)

    assert len(send(request_of_size(MAX_BODY_BYTES)).request.resource_metrics) == 1
    with pytest.raises(BodyTooLarge) as refused:
        send(request_of_size(MAX_BODY_BYTES + 1))
    assert refused.value.status == 413


def test_a_compressed_body_over_5_mib_is_413_before_it_is_inflated() -> None:
    with pytest.raises(BodyTooLarge):
        decode_export(
            body=b"\x1f\x8b" + bytes(MAX_BODY_BYTES), content_type=PROTOBUF, content_encoding="gzip"
        )


def single_member_bomb() -> bytes:
    """256 MiB of zeros in one gzip stream of about 260 KB."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = bytes(1024 * 1024)
    return b"".join(compressor.compress(chunk) for _ in range(256)) + compressor.flush()


def many_member_bomb() -> bytes:
    """1 GiB of zeros as 1,024 gzip members of 1 MiB each, about 1 MB in all."""
    return gzip.compress(bytes(1024 * 1024), 9) * 1024


@pytest.fixture(scope="module", params=[single_member_bomb, many_member_bomb])
def gzip_bomb(request: pytest.FixtureRequest) -> bytes:
    bomb = request.param()
    assert len(bomb) < MAX_BODY_BYTES / 4
    return bomb


@pytest.mark.parametrize("content_type", [PROTOBUF, JSON])
def test_a_gzip_bomb_is_refused_as_413_with_bounded_memory(gzip_bomb: bytes, content_type: str) -> None:
    tracemalloc.start()
    try:
        with pytest.raises(BodyTooLarge) as refused:
            decode_export(body=gzip_bomb, content_type=content_type, content_encoding="gzip")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert refused.value.status == 413
    assert peak < 20 * 1024 * 1024, f"peak {peak:,} bytes"
    print(f"gzip bomb of {len(gzip_bomb):,} bytes refused; peak traced memory {peak:,} bytes")


def test_a_body_of_many_tiny_gzip_members_is_decoded_in_linear_time() -> None:
    # 200,000 empty members (4 MB). Handing zlib the whole rest of the body at each member made it
    # copy what was left once per member (400 GB here): about a minute of CPU for one request.
    body = gzip.compress(b"") * 200_000
    started = time.perf_counter()

    decoded = decode_export(body=body, content_type=PROTOBUF, content_encoding="gzip")

    elapsed = time.perf_counter() - started
    assert decoded.request == ExportMetricsServiceRequest()
    assert elapsed < 10, f"{elapsed:.1f} s"  # under a second on the 2-core CI machine
    print(f"200,000 gzip members decoded in {elapsed:.2f} s")


@settings(max_examples=100, deadline=None)
@given(
    body=st.binary(max_size=300_000) | st.integers(0, 300_000).map(lambda n: b"x" * n),
    level=st.integers(0, 9),
)
def test_gzip_bodies_of_any_size_inflate_to_exactly_what_was_compressed(body: bytes, level: int) -> None:
    # The body is inflated in 64 KiB steps: sizes around and across the steps come out whole.
    request = ExportMetricsServiceRequest()
    request.resource_metrics.add().resource.attributes.add(key="k").value.bytes_value = body
    sent = request.SerializeToString()

    decoded = decode_export(body=gzip.compress(sent, level), content_type=PROTOBUF, content_encoding="gzip")

    assert decoded.request == request


# Hypothesis: whatever arrives, the decoder answers with a request or a typed refusal, nothing else.

CONTENT_TYPES = st.sampled_from([PROTOBUF, JSON, "application/json; charset=utf-8", "text/plain", None])
ENCODINGS = st.sampled_from([None, "gzip", "br"])


def decoded_or_refused(body: bytes, content_type: str | None, content_encoding: str | None) -> None:
    try:
        result = decode_export(body=body, content_type=content_type, content_encoding=content_encoding)
    except ExportRefused as refused:
        assert refused.status in {400, 413, 415}
        assert refused.message
    else:
        assert isinstance(result.request, ExportMetricsServiceRequest)


@settings(max_examples=400, deadline=None)
@given(body=st.binary(max_size=2000), content_type=CONTENT_TYPES, content_encoding=ENCODINGS)
def test_arbitrary_bytes_decode_or_are_refused_with_a_typed_error(
    body: bytes, content_type: str | None, content_encoding: str | None
) -> None:
    decoded_or_refused(body, content_type, content_encoding)


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=2000), content_type=CONTENT_TYPES)
def test_arbitrary_bytes_gzipped_decode_or_are_refused_with_a_typed_error(
    body: bytes, content_type: str | None
) -> None:
    decoded_or_refused(gzip.compress(body), content_type, "gzip")


OTLP_KEYS = "resourceMetrics scopeMetrics metrics name gauge sum histogram dataPoints asDouble asInt"
OTLP_KEYS += " timeUnixNano attributes key value stringValue x"
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(OTLP_KEYS.split()), children, max_size=4)
    ),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=JSON_VALUES)
def test_arbitrary_json_documents_decode_or_are_refused_with_a_typed_error(document: object) -> None:
    decoded_or_refused(json.dumps(document).encode(), JSON, None)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_a_real_export_with_bytes_flipped_decodes_or_is_refused_with_a_typed_error(
    data: st.DataObject,
) -> None:
    sdk = instrumented()
    sdk.meter.create_histogram("latency_ms").record(42.0, {"route": "/score"})
    body = bytearray(sdk.export().SerializeToString())
    for _ in range(data.draw(st.integers(1, 8))):
        body[data.draw(st.integers(0, len(body) - 1))] = data.draw(st.integers(0, 255))
    decoded_or_refused(bytes(body), PROTOBUF, None)


def test_an_attribute_with_invalid_utf8_in_protobuf_is_undecodable() -> None:
    # proto3 strings must be UTF-8: the generated parser refuses them rather than storing garbage.
    request = ExportMetricsServiceRequest()
    request.resource_metrics.add().resource.attributes.append(
        KeyValue(key="k", value=AnyValue(string_value="\N{SNOWMAN}"))
    )
    body = request.SerializeToString().replace("\N{SNOWMAN}".encode(), b"\xff\xfe\xfd")

    with pytest.raises(UndecodableBody):
        decode_export(body=body, content_type=PROTOBUF)
