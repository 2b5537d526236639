"""Read endpoints (PRODUCT.md §3 "Read"): a session with read access, or a token with ``scorecard:read``
of the project itself. Views are thin: check access, parse, call a selector or service, render."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers as drf_serializers
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from readiness.api.access import READ, project_for_caller, projects_for_caller
from readiness.api.schema import error_responses
from readiness.api.selectors import latest_decision, scorecard_history, with_latest_decision
from readiness.api.serializers import (
    MetricOutputSerializer,
    MetricPathSerializer,
    MetricQuerySerializer,
    ProjectDetailOutputSerializer,
    ProjectListOutputSerializer,
    ScorecardHistoryQuerySerializer,
    ScorecardPageSerializer,
    ScorecardSerializer,
    TargetQuerySerializer,
)
from readiness.projects.models import Project
from readiness.scoring.engine import parse_window
from readiness.scoring.models import window_retention_error
from readiness.scoring.services import latest_scorecard, scorecard_compute, scorecard_for_gate
from readiness.telemetry.series import metric_summary

SLUG = OpenApiParameter("slug", OpenApiTypes.STR, OpenApiParameter.PATH, pattern=r"^[-a-zA-Z0-9_]+$")


def _valid_query(serializer_class: type[drf_serializers.Serializer], data: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def scorecard_payload(*, project: Project, target: str | None) -> dict[str, Any]:
    """The latest stored scorecard, or, for an explicit target, one evaluated now (not stored)."""
    if target is None:
        return latest_scorecard(project=project).payload
    return scorecard_compute(project=project, target=target).to_json()


class ProjectListApi(APIView):
    @extend_schema(
        operation_id="projects_list",
        summary="Projects the caller may read",
        responses={200: ProjectListOutputSerializer(many=True), **error_responses(403)},
    )
    def get(self, request: Request) -> Response:
        projects = with_latest_decision(projects_for_caller(request)).order_by("slug")
        return Response(ProjectListOutputSerializer(projects, many=True).data)


class ProjectDetailApi(APIView):
    @extend_schema(
        operation_id="projects_retrieve",
        summary="A project, its responsible people and its latest decision",
        parameters=[SLUG],
        responses={200: ProjectDetailOutputSerializer, **error_responses(403)},
    )
    def get(self, request: Request, slug: str) -> Response:
        project = project_for_caller(request, slug, token_scope=READ)
        project.latest_decision = latest_decision(project=project)
        return Response(ProjectDetailOutputSerializer(project).data)


class ScorecardApi(APIView):
    @extend_schema(
        operation_id="projects_scorecard_retrieve",
        summary="The latest scorecard, or one evaluated now for another target",
        parameters=[SLUG, TargetQuerySerializer],
        responses={200: ScorecardSerializer, **error_responses(400, 403)},
    )
    def get(self, request: Request, slug: str) -> Response:
        project = project_for_caller(request, slug, token_scope=READ)
        query = _valid_query(TargetQuerySerializer, request.query_params)
        return Response(scorecard_payload(project=project, target=query.get("target")))


class ScorecardPagination(PageNumberPagination):
    page_size = 50


class ScorecardHistoryApi(APIView):
    @extend_schema(
        operation_id="projects_scorecards_list",
        summary="Stored scorecards, newest first, 50 a page",
        parameters=[SLUG, ScorecardHistoryQuerySerializer],
        responses={200: ScorecardPageSerializer, **error_responses(400, 403)},
    )
    def get(self, request: Request, slug: str) -> Response:
        project = project_for_caller(request, slug, token_scope=READ)
        # Validating `page` here turns "page=abc" into a 400; a page past the end stays DRF's 404.
        query = _valid_query(ScorecardHistoryQuerySerializer, request.query_params)
        payloads = scorecard_history(project=project, since=query.get("since")).values_list(
            "payload", flat=True
        )
        paginator = ScorecardPagination()
        page = paginator.paginate_queryset(payloads, request, view=self)
        return paginator.get_paginated_response(list(page or []))


class MetricApi(APIView):
    @extend_schema(
        operation_id="projects_metrics_retrieve",
        summary="A metric's aggregate over a window, with a chartable series",
        parameters=[
            SLUG,
            OpenApiParameter(
                "metric", OpenApiTypes.STR, OpenApiParameter.PATH, pattern=r"^[a-z][a-z0-9_.:]{0,99}$"
            ),
            MetricQuerySerializer,
        ],
        responses={200: MetricOutputSerializer, **error_responses(400, 403)},
    )
    def get(self, request: Request, slug: str, metric: str) -> Response:
        project = project_for_caller(request, slug, token_scope=READ)
        _valid_query(MetricPathSerializer, {"metric": metric})
        query = _valid_query(MetricQuerySerializer, request.query_params)
        # At most the rollup retention (PRODUCT.md §9), as for a criterion: a longer window would
        # answer from points that are gone. Far from the datetime range too: `now - window` stays a date.
        too_long = window_retention_error(query["window"])
        try:
            window = parse_window(query["window"])
        except ValueError:  # more digits than parse_window takes: far beyond any retention anyway
            too_long = f"at most {settings.READINESS_ROLLUP_RETENTION_DAYS}d"
        if too_long:
            raise drf_serializers.ValidationError({"window": [too_long]})
        summary = metric_summary(
            project=project,
            metric=metric,
            aggregation=query["aggregation"],
            window=window,
            now=timezone.now(),
            kinds=[query["source"]] if "source" in query else (),
        )
        body = {
            "metric": metric,
            "window": query["window"],
            "aggregation": query["aggregation"],
            "value": summary.value,
            "count": summary.count,
            "approximate": summary.approximate,
            "series": summary.series,
            "sources": summary.sources,
        }
        return Response(MetricOutputSerializer(body).data)


class GateApi(APIView):
    @extend_schema(
        operation_id="projects_gate_retrieve",
        summary="The deploy gate: 200 when go, 412 when no-go, with the scorecard either way",
        description="`curl --fail` on this URL fails a pipeline exactly when the project is not ready. "
        "Without `target` the latest stored scorecard (for the project's default target) decides, "
        "evaluated afresh first (and stored) when no evaluation confirmed it in the last 60 s or a "
        "waiver or attestation expired since; with `target` the project is evaluated now.",
        parameters=[SLUG, TargetQuerySerializer],
        responses={
            200: OpenApiResponse(ScorecardSerializer, description="go"),
            412: OpenApiResponse(ScorecardSerializer, description="no-go: see `blockers`"),
            **error_responses(400, 403),
        },
    )
    def get(self, request: Request, slug: str) -> Response:
        project = project_for_caller(request, slug, token_scope=READ)
        query = _valid_query(TargetQuerySerializer, request.query_params)
        target = query.get("target")
        # Never from stale evidence (PRODUCT.md §3): a deploy decided on an expired waiver is the
        # failure this endpoint exists to prevent.
        if target is None:
            payload = scorecard_for_gate(project=project).payload
        else:
            payload = scorecard_compute(project=project, target=target).to_json()
        return Response(payload, status=200 if payload["decision"] == "go" else 412)
