"""``POST /api/v1/metrics``: the ingestion fast path (PRODUCT.md §3 "Push metrics").

Deliberately lean: no DRF parser or serializer per point (``readiness.telemetry.push`` validates a
10,000-point batch in one loop), the token read once, and one INSERT + COMMIT before the 202.
"""

from __future__ import annotations

import orjson
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.views import APIView

from readiness.api.serializers import ErrorSerializer, PushErrorSerializer
from readiness.api.tokens import PushCaller, push_caller
from readiness.security.bearer import bearer_secret
from readiness.security.errors import error_response
from readiness.telemetry.provenance import source_label
from readiness.telemetry.push import (
    MAX_BODY_BYTES,
    MAX_LABEL_VALUE,
    MAX_LABELS,
    MAX_POINTS,
    METRIC_RE,
    PushInvalid,
)
from readiness.telemetry.services import IdempotencyConflict, batch_ingest

# How long a client should wait before retrying while the database is unreachable.
RETRY_AFTER_SECONDS = "5"
MAX_IDEMPOTENCY_KEY = 200

_accepted = inline_serializer(
    "PushAccepted", {"batch_id": serializers.UUIDField(), "accepted": serializers.IntegerField()}
)
# For the schema only (the view validates with readiness.telemetry.push): what a push looks like, so
# clients and generated tests (schemathesis) know the shape of a valid body.
_push = inline_serializer(
    "PushInput",
    {
        "points": serializers.ListField(
            min_length=1,
            max_length=MAX_POINTS,
            child=inline_serializer(
                "PushPoint",
                {
                    "metric": serializers.RegexField(f"^{METRIC_RE.pattern}$", max_length=100),
                    "value": serializers.FloatField(help_text="a finite number"),
                    "ts": serializers.DateTimeField(
                        required=False, help_text="ISO 8601 with offset; server time when absent"
                    ),
                    "labels": serializers.DictField(
                        required=False,
                        child=serializers.CharField(max_length=MAX_LABEL_VALUE),
                        help_text=f"at most {MAX_LABELS} pairs; keys [a-z_][a-z0-9_]{{0,49}}",
                    ),
                },
            ),
        )
    },
)


class MetricsPushView(APIView):
    authentication_classes = ()
    permission_classes = ()
    parser_classes = ()

    @extend_schema(
        operation_id="metrics_push",
        summary="Push metric points (1 to 10,000 per request, all-or-nothing)",
        request={"application/json": _push},
        parameters=[
            OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False),
        ],
        examples=[
            OpenApiExample(
                "Two points",
                value={
                    "points": [
                        {
                            "metric": "latency_ms",
                            "value": 182.5,
                            "ts": "2026-11-22T10:00:00Z",
                            "labels": {"model_version": "7"},
                        },
                        {"metric": "accuracy", "value": 0.931},
                    ]
                },
                request_only=True,
            )
        ],
        responses={
            202: _accepted,
            # Every refusal in the one error shape, so clients (and schemathesis) can rely on its body.
            400: OpenApiResponse(
                PushErrorSerializer,
                description="invalid body, nothing stored; details list the first 100 problems (a metric "
                "named health.* is one: those names are reserved for health checks)",
            ),
            **{
                status: OpenApiResponse(ErrorSerializer, description=description)
                for status, description in {
                    401: "no or unknown token",
                    403: "the token lacks metrics:write",
                    409: "Idempotency-Key reused with a different body",
                    413: "body over 5 MiB",
                    415: "Content-Type is not application/json",
                    503: "database unreachable; retry after Retry-After seconds",
                }.items()
            },
        },
    )
    def post(self, request: Request) -> HttpResponse:
        # What the schema documents and DRF's Allow header lists; a POST is answered by dispatch.
        return metrics_push_answer(request._request)

    def dispatch(self, request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        # A push is answered without DRF's request wrapping, content negotiation and rendering: the
        # view parses and answers by itself, and at hundreds of pushes a second that machinery was
        # a tenth of a push's CPU. Other methods keep DRF's answers (405 with Allow, OPTIONS).
        if request.method == "POST":
            return metrics_push_answer(request)
        return super().dispatch(request, *args, **kwargs)


def metrics_push_answer(request: HttpRequest) -> HttpResponse:
    try:
        return metrics_push(request)
    except (OperationalError, InterfaceError):
        # "Not acknowledged", not "not stored": the connection can die between the INSERT's commit
        # and this answer. A retry with the same Idempotency-Key is a replay, never a copy.
        return database_unavailable(
            "the push was not acknowledged: retry later with the same Idempotency-Key"
        )


def database_unavailable(consequence: str) -> HttpResponse:
    """The 503 of an ingestion path without its database: never an answer that is not durable, and
    ``Retry-After`` so the client (a push script, an OTLP exporter) comes back."""
    return error_response(
        503,
        "unavailable",
        f"the database is unreachable; {consequence}",
        headers={"Retry-After": RETRY_AFTER_SECONDS},
    )


def push_token(request: HttpRequest) -> PushCaller | HttpResponse:
    """The caller of an ingestion path (JSON push, OTLP): a token with ``metrics:write``, or the
    401/403 to answer."""
    secret = bearer_secret(request)
    if secret is None:
        return error_response(
            401,
            "unauthenticated",
            "send Authorization: Bearer <project token>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    token = push_caller(secret)
    if token is None:
        return error_response(
            401, "unauthenticated", "unknown or revoked token", headers={"WWW-Authenticate": "Bearer"}
        )
    if "metrics:write" not in token.scopes:
        return error_response(403, "forbidden", "this token lacks the metrics:write scope")
    return token


def push_body(request: HttpRequest) -> bytes | HttpResponse:
    """The request's body, or the 413 for one over 5 MiB: refused on its declared length before it
    is read, and on what was read when the length was not declared (chunked)."""
    too_large = error_response(413, "too_large", "a push may carry at most 5 MiB of body")
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > MAX_BODY_BYTES:
        return too_large
    try:
        body = request.body
    except RequestDataTooBig:
        return too_large
    if len(body) > MAX_BODY_BYTES:
        return too_large
    return body


def metrics_push(request: HttpRequest) -> HttpResponse:
    token = push_token(request)
    if isinstance(token, HttpResponse):
        return token
    content_type = request.META.get("CONTENT_TYPE", "").split(";", 1)[0].strip().lower()
    if content_type != "application/json":
        return error_response(415, "unsupported_media_type", "Content-Type must be application/json")
    body = push_body(request)
    if isinstance(body, HttpResponse):
        return body
    key = request.META.get("HTTP_IDEMPOTENCY_KEY")
    if key is not None and not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY:
        return error_response(400, "invalid", "Idempotency-Key must be 1 to 200 characters", [])
    try:
        batch_id, accepted, _ = batch_ingest(
            project_id=token.project_id,
            body=body,
            source=source_label("push", token.name),
            idempotency_key=key,
            token_id=token.token_id,
        )
    except PushInvalid as exc:
        return error_response(400, "invalid", exc.message, exc.details)
    except IdempotencyConflict as exc:
        return error_response(409, "conflict", str(exc))
    return HttpResponse(
        orjson.dumps({"batch_id": str(batch_id), "accepted": accepted}),
        status=202,
        content_type="application/json",
    )
