"""``POST /api/v1/otlp/v1/metrics``: the OTLP/HTTP receiver (PRODUCT.md §8 "OTLP receiver").

An OpenTelemetry SDK or Collector exports here with nothing but its endpoint and an
``Authorization`` header. The token, the body limit, the 503 and (in the middleware) the rate limit
are the JSON push's own (``readiness.api.push``); decoding, mapping and the answer are the pure
``readiness.telemetry.otlp`` package's. The mapped points become the push's COPY rows and one
pending batch, stored in the same transaction as the series memory the mapping moved on, before the
200: an acknowledged export is durable, and its cumulative differences are counted exactly once.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from django.db import InterfaceError, OperationalError, transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, inline_serializer
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.views import APIView

from readiness.api.push import database_unavailable, push_body, push_token
from readiness.api.serializers import ErrorSerializer, PushErrorSerializer
from readiness.api.tokens import PushCaller
from readiness.security.errors import error_response
from readiness.telemetry.otlp import (
    ExportRefused,
    MappedExport,
    ReservedName,
    decode_export,
    encode_response,
    map_export,
)
from readiness.telemetry.otlp_memory import DatabaseSeriesMemory
from readiness.telemetry.provenance import source_label
from readiness.telemetry.push import encode_valid_points
from readiness.telemetry.services import batch_store

# The OTLP JSON mapping of an ExportMetricsServiceResponse, for the schema (protobuf answers carry the
# same message in binary).
_response = inline_serializer(
    "OtlpExportResponse",
    {
        "partialSuccess": inline_serializer(
            "OtlpPartialSuccess",
            {
                "rejectedDataPoints": serializers.CharField(
                    help_text="data points rejected (an int64, as a string in OTLP JSON)"
                ),
                "errorMessage": serializers.CharField(
                    help_text="the first reasons, each naming its data point"
                ),
            },
            required=False,
        )
    },
)
_request = inline_serializer(
    "OtlpExportRequest",
    {
        "resourceMetrics": serializers.ListField(
            child=serializers.DictField(),
            required=False,
            help_text="OTLP's ExportMetricsServiceRequest in the OTLP JSON encoding",
        )
    },
)


class OtlpMetricsView(APIView):
    authentication_classes = ()
    permission_classes = ()
    parser_classes = ()

    @extend_schema(
        operation_id="otlp_metrics_export",
        summary="OTLP/HTTP metrics export (protobuf or JSON, optionally gzip)",
        tags=["metrics"],
        description=(
            "Point an OpenTelemetry SDK (`OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`) or a Collector's "
            "`otlphttp` exporter here, with `Authorization: Bearer <token with metrics:write>`. "
            "Limits as pushes: 5 MiB of body (compressed and decoded), 10,000 resulting points. "
            "Stored before the answer; rejected data points are counted in `partial_success`."
        ),
        request={"application/x-protobuf": OpenApiTypes.BINARY, "application/json": _request},
        examples=[
            OpenApiExample(
                "One gauge data point",
                value={
                    "resourceMetrics": [
                        {
                            "resource": {
                                "attributes": [{"key": "service.name", "value": {"stringValue": "fraud-api"}}]
                            },
                            "scopeMetrics": [
                                {
                                    "metrics": [
                                        {
                                            "name": "model.accuracy",
                                            "gauge": {
                                                "dataPoints": [
                                                    {"timeUnixNano": "1795000000000000000", "asDouble": 0.931}
                                                ]
                                            },
                                        }
                                    ]
                                }
                            ],
                        }
                    ]
                },
                request_only=True,
            )
        ],
        responses={
            # OTLP answers in the request's encoding: the same message as OTLP JSON or protobuf.
            (200, "application/json"): OpenApiResponse(
                _response,
                description="ExportMetricsServiceResponse; `partialSuccess` when data points were "
                "rejected (the others are stored)",
            ),
            (200, "application/x-protobuf"): OpenApiResponse(
                OpenApiTypes.BINARY, description="ExportMetricsServiceResponse (protobuf)"
            ),
            400: OpenApiResponse(
                PushErrorSerializer,
                description="undecodable body, or a data point of a reserved `health.*` metric (its "
                "index and field in details); nothing stored",
            ),
            **{
                status: OpenApiResponse(ErrorSerializer, description=description)
                for status, description in {
                    401: "no or unknown token",
                    403: "the token lacks metrics:write",
                    413: "body over 5 MiB (compressed or decoded), or over 10,000 resulting points",
                    415: "Content-Type is neither application/x-protobuf nor application/json, or "
                    "Content-Encoding is neither gzip nor absent",
                    503: "database unreachable; retry after Retry-After seconds",
                }.items()
            },
        },
    )
    def post(self, request: Request) -> HttpResponse:
        try:
            return otlp_export(request._request)
        except (OperationalError, InterfaceError):
            # OTLP exporters retry a 503 after Retry-After.
            return database_unavailable("the export was not acknowledged: retry later")


def otlp_export(request: HttpRequest) -> HttpResponse:
    token = push_token(request)
    if isinstance(token, HttpResponse):
        return token
    body = push_body(request)
    if isinstance(body, HttpResponse):
        return body
    now = timezone.now()
    try:
        decoded = decode_export(
            body=body,
            content_type=request.META.get("CONTENT_TYPE"),
            content_encoding=request.META.get("HTTP_CONTENT_ENCODING"),
        )
        mapped = _store(decoded.request, token=token, body=body, now=now)
    except ReservedName as exc:
        detail = {"index": exc.index, "field": exc.path.rsplit(".", 2)[0] + ".name", "message": exc.message}
        return error_response(exc.status, exc.code, exc.message, [detail])
    except ExportRefused as exc:
        return error_response(exc.status, exc.code, exc.message, [] if exc.status == 400 else None)
    answer = encode_response(encoding=decoded.encoding, mapped=mapped)
    return HttpResponse(answer.body, status=200, content_type=answer.content_type)


def _store(
    request: ExportMetricsServiceRequest, *, token: PushCaller, body: bytes, now: datetime
) -> MappedExport:
    """Map the export and store its points, with the series memory it moved on, in one transaction:
    a failure before the commit leaves both as they were, and the exporter's retry maps the same
    differences again. Raises what refuses the export whole (``ExportRefused``)."""
    with transaction.atomic():
        memory = DatabaseSeriesMemory(project_id=token.project_id, now=now)
        mapped = map_export(request=request, memory=memory, now=now)
        if mapped.points:
            batch_store(
                project_id=token.project_id,
                parsed=encode_valid_points((p.metric, p.ts, p.value, p.labels) for p in mapped.points),
                source=source_label("otlp", token.name),
                digest=hashlib.sha256(body).hexdigest(),
                token_id=token.token_id,
                now=now,
            )
    return mapped
