"""OTLP/HTTP metrics for the receiver of PRODUCT.md §8: decode an export, map it to points, answer.

A pure package (no Django, no clock, no I/O) for the view of ``POST /api/v1/otlp/v1/metrics``::

    decoded = decode_export(body=body, content_type=ct, content_encoding=ce)   # 400/413/415
    mapped = map_export(request=decoded.request, memory=memory, now=now)       # 400/413
    answer = encode_response(encoding=decoded.encoding, mapped=mapped)         # 200

Every refusal of the whole export is an ``ExportRefused`` carrying its HTTP status; a data point
that cannot be stored is rejected alone and reported in ``partial_success``. Call ``map_export``
inside the transaction that stores ``mapped.points``, with a ``SeriesMemory`` in that database (see
``series``). The rules live with their code: ``naming`` (names and labels), ``mapping`` (data points),
``histograms`` (cumulative differences), ``quantiles`` (percentiles from buckets), ``decode`` (media
types, gzip, limits).
"""

from __future__ import annotations

from readiness.telemetry.otlp.decode import DecodedExport, Encoding, decode_export
from readiness.telemetry.otlp.errors import (
    BodyTooLarge,
    ExportRefused,
    ReservedName,
    TooManyPoints,
    UndecodableBody,
    UnsupportedMediaType,
)
from readiness.telemetry.otlp.histograms import HistogramState
from readiness.telemetry.otlp.mapping import MappedExport, OtlpPoint, map_export
from readiness.telemetry.otlp.response import EncodedResponse, encode_response
from readiness.telemetry.otlp.series import InMemorySeriesMemory, SeriesMemory, series_key

__all__ = [
    "BodyTooLarge",
    "DecodedExport",
    "EncodedResponse",
    "Encoding",
    "ExportRefused",
    "HistogramState",
    "InMemorySeriesMemory",
    "MappedExport",
    "OtlpPoint",
    "ReservedName",
    "SeriesMemory",
    "TooManyPoints",
    "UndecodableBody",
    "UnsupportedMediaType",
    "decode_export",
    "encode_response",
    "map_export",
    "series_key",
]
