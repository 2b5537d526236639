"""Why a whole OTLP export is refused. Each carries the HTTP status the receiver answers with.

A refusal changes nothing: decoding and mapping raise these before any series memory is written.
Data points refused one by one are not errors: they are counted in the mapped export and reported in
``partial_success`` (OTLP/HTTP answers 200 for a partly accepted export).
"""

from __future__ import annotations

from typing import ClassVar


class ExportRefused(Exception):
    """Base of every whole-export refusal; ``status`` is the HTTP status the view answers with."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "invalid"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UndecodableBody(ExportRefused):
    """Not an ExportMetricsServiceRequest in the declared encoding (or a broken gzip stream)."""

    status = 400
    code = "undecodable"


class UnsupportedMediaType(ExportRefused):
    """A Content-Type other than OTLP's two, or a Content-Encoding other than gzip."""

    status = 415
    code = "unsupported_media_type"


class BodyTooLarge(ExportRefused):
    """More than 5 MiB, compressed or decoded (a push's limit, PRODUCT.md §3 and §8)."""

    status = 413
    code = "too_large"


class TooManyPoints(ExportRefused):
    """The export maps to more than 10,000 points.

    413 rather than a push's 400: the body is valid, there is only too much of it for one request,
    and the remedy is the one for a body over 5 MiB (smaller batches: the Collector's
    ``send_batch_max_size``, the SDK exporter's ``max_export_batch_size``). OTLP exporters retry
    neither status, so the two only differ in what they tell the operator.
    """

    status = 413
    code = "too_many_points"


class ReservedName(ExportRefused):
    """A data point whose metric (or one of the points it maps to) starts with ``health.``.

    Names under ``health.`` are the probes' evidence (PRODUCT.md §8): an export carrying one is
    refused whole, and the view names the data point (``index``, counted over the whole export in
    order) and its field ``metric``.
    """

    status = 400
    code = "reserved_metric"

    def __init__(self, *, index: int, path: str, metric: str) -> None:
        super().__init__(
            f"data point {index} ({path}) maps to metric {metric!r}: "
            "names starting with 'health.' are reserved for probes"
        )
        self.index = index
        self.path = path
        self.metric = metric
