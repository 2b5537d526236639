"""An OTLP/HTTP metrics body to an ExportMetricsServiceRequest: media type, gzip, protobuf or JSON.

The generated message classes of ``opentelemetry-proto`` do all the parsing; the JSON form goes
through protobuf's own JSON mapping (``json_format``), which accepts OTLP's lowerCamelCase names,
enums as integers and 64-bit integers as strings. Unknown fields are ignored in both encodings, as
the OTLP specification asks of receivers, so a newer exporter still gets through.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from enum import StrEnum

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from readiness.telemetry.otlp.errors import BodyTooLarge, UndecodableBody, UnsupportedMediaType
from readiness.telemetry.push_rules import MAX_BODY_BYTES

_GZIP_WBITS = 16 + zlib.MAX_WBITS  # gzip header and trailer only, not raw deflate or zlib
_INFLATE_STEP = 64 * 1024
_INPUT_STEP = 1024


class Encoding(StrEnum):
    PROTOBUF = "application/x-protobuf"
    JSON = "application/json"


@dataclass(frozen=True)
class DecodedExport:
    request: ExportMetricsServiceRequest
    encoding: Encoding  # the answer goes back in the request's encoding (OTLP/HTTP)


def decode_export(
    *, body: bytes, content_type: str | None, content_encoding: str | None = None
) -> DecodedExport:
    """Decode one export. Raises UnsupportedMediaType (415), BodyTooLarge (413) or UndecodableBody (400)."""
    encoding = _media_type(content_type)
    compressed = _content_coding(content_encoding)
    if len(body) > MAX_BODY_BYTES:
        raise BodyTooLarge(f"the body is larger than {MAX_BODY_BYTES:,} bytes")
    # A bytearray from gunzip: the parsers read it as it is, without a second 5 MiB copy.
    data = _gunzip(body, limit=MAX_BODY_BYTES) if compressed else body
    request = _parse_json(data) if encoding is Encoding.JSON else _parse_protobuf(data)
    return DecodedExport(request=request, encoding=encoding)


def _media_type(content_type: str | None) -> Encoding:
    media_type, _, parameters = (content_type or "").partition(";")
    media_type = media_type.strip().lower()
    try:
        encoding = Encoding(media_type)
    except ValueError:
        raise UnsupportedMediaType(
            f"Content-Type must be {Encoding.PROTOBUF} or {Encoding.JSON}, not {media_type or 'missing'!r}"
        ) from None
    if encoding is Encoding.JSON:
        # JSON is UTF-8 (RFC 8259); a body declared in another charset would be read wrongly.
        for parameter in parameters.split(";"):
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in {
                "utf-8",
                "utf8",
            }:
                raise UnsupportedMediaType(f"{Encoding.JSON} bodies must be UTF-8, not {value.strip()!r}")
    return encoding


def _content_coding(content_encoding: str | None) -> bool:
    coding = (content_encoding or "").strip().lower()
    if coding in {"", "identity"}:
        return False
    if coding in {"gzip", "x-gzip"}:
        return True
    # RFC 7694: an unsupported content coding is a 415.
    raise UnsupportedMediaType(f"Content-Encoding must be gzip or absent, not {coding!r}")


def _gunzip(body: bytes, *, limit: int) -> bytearray:
    """Inflate a gzip body (several members allowed, as gzip and Go's reader do), stopping past ``limit``.

    Each step yields at most ``_INFLATE_STEP`` bytes, so a small bomb (kilobytes inflating to
    gigabytes) is refused once ``limit`` is passed, having held little more than ``limit`` in memory.
    The input goes in slices of ``_INPUT_STEP``: at the end of a member zlib copies the input it was
    given and did not use, and a hostile run of tiny members would otherwise copy the rest of the
    body once per member.
    """
    decoded = bytearray()
    view = memoryview(body)
    inflater = zlib.decompressobj(_GZIP_WBITS)
    members, in_member = 0, False
    for offset in range(0, len(body), _INPUT_STEP):
        pending: bytes | memoryview = view[offset : offset + _INPUT_STEP]
        while True:
            in_member = in_member or bool(pending)
            try:
                step = inflater.decompress(pending, _INFLATE_STEP)
            except zlib.error as exc:
                raise UndecodableBody(f"the gzip body is corrupt: {exc}") from None
            decoded += step
            if len(decoded) > limit:
                raise BodyTooLarge(f"the body is larger than {limit:,} bytes once decompressed")
            if inflater.eof:
                # Another member may begin in what is left of this slice.
                members, in_member = members + 1, False
                pending, inflater = inflater.unused_data, zlib.decompressobj(_GZIP_WBITS)
                continue
            stuck = not step and len(inflater.unconsumed_tail) == len(pending)
            pending = inflater.unconsumed_tail
            # A full step may leave output inside zlib with no input left: ask again until none comes.
            if stuck or not (pending or step):
                break
    if in_member or not members:
        raise UndecodableBody("the gzip body is truncated")
    return decoded


def _parse_protobuf(data: bytes | bytearray) -> ExportMetricsServiceRequest:
    request = ExportMetricsServiceRequest()
    try:
        request.ParseFromString(data)
    except DecodeError as exc:
        raise UndecodableBody(f"the body is not an OTLP ExportMetricsServiceRequest: {exc}") from None
    return request


def _parse_json(data: bytes | bytearray) -> ExportMetricsServiceRequest:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UndecodableBody(f"the JSON body is not UTF-8: {exc}") from None
    if not text.lstrip(" \t\r\n").startswith("{"):
        # json_format takes a bare string or number for an empty message; an export is an object.
        raise UndecodableBody("the body is not OTLP JSON: an ExportMetricsServiceRequest is a JSON object")
    try:
        return json_format.Parse(text, ExportMetricsServiceRequest(), ignore_unknown_fields=True)
    except json_format.ParseError as exc:
        raise UndecodableBody(f"the body is not OTLP JSON: {exc}") from None
    except RecursionError:
        # Python's json parser recurses once per nesting level before protobuf's depth limit applies.
        raise UndecodableBody("the body is not OTLP JSON: nested too deeply") from None
