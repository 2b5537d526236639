"""Act endpoints (PRODUCT.md §3 "Act"): attest, sign off, request and decide waivers, mark criteria not
applicable. Each view checks readability and token scope (``readiness.api.access``), parses its input
and calls the same service the pages call; the services hold the role rules (responsible person,
team member, never the requester) and re-evaluate the project."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers as drf_serializers
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from readiness.api.access import (
    ATTEST,
    PEOPLE_ONLY,
    criterion_for_caller,
    project_for_caller,
    waiver_for_caller,
)
from readiness.api.authentication import caller_token
from readiness.api.schema import error_responses
from readiness.api.serializers import (
    AttestationInputSerializer,
    AttestationOutputSerializer,
    CriterionApplicabilityOutputSerializer,
    NotApplicableInputSerializer,
    SignOffInputSerializer,
    SignOffOutputSerializer,
    WaiverInputSerializer,
    WaiverOutputSerializer,
)
from readiness.api.views_read import SLUG
from readiness.projects.models import Project
from readiness.scoring.models import Criterion
from readiness.scoring.services import (
    attestation_create,
    criterion_clear_not_applicable,
    criterion_mark_not_applicable,
    signoff_create,
    waiver_approve,
    waiver_reject,
    waiver_request,
)

KEY = OpenApiParameter("key", OpenApiTypes.STR, OpenApiParameter.PATH, pattern=r"^[a-z][a-z0-9_]{0,79}$")
WAIVER_ID = OpenApiParameter("waiver_id", OpenApiTypes.INT, OpenApiParameter.PATH)


def _valid_body(serializer_class: type[drf_serializers.Serializer], data: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _criterion_named_in_body(project: Project, key: str) -> Criterion:
    """A criterion named in a request body: unknown is bad input (400), as the project itself is
    readable; a criterion named in the URL is a 404 instead (``criterion_for_caller``)."""
    criterion = Criterion.objects.filter(project=project, key=key).first()
    if criterion is None:
        raise drf_serializers.ValidationError({"criterion": [f"{project.slug} has no criterion {key!r}"]})
    criterion.project = project
    return criterion


class AttestationCreateApi(APIView):
    @extend_schema(
        operation_id="projects_attestations_create",
        summary="Attest a criterion (a token with `attest`, or the responsible person)",
        description="Through a token the attestation is `automated` (1 point in the ML Test Score).",
        parameters=[SLUG],
        request=AttestationInputSerializer,
        responses={201: AttestationOutputSerializer, **error_responses(400, 403, 415)},
    )
    def post(self, request: Request, slug: str) -> Response:
        project = project_for_caller(request, slug, token_scope=ATTEST)
        data = _valid_body(AttestationInputSerializer, request.data)
        criterion = _criterion_named_in_body(project, data["criterion"])
        token = caller_token(request)
        attestation = attestation_create(
            criterion=criterion,
            by=None if token is not None else request.user,
            token=token,
            evidence_url=data["evidence_url"],
            note=data["note"],
        )
        return Response(AttestationOutputSerializer(attestation).data, status=status.HTTP_201_CREATED)


class SignOffCreateApi(APIView):
    @extend_schema(
        operation_id="projects_signoffs_create",
        summary="Sign off a dimension (its responsible person or an admin; never a token)",
        parameters=[SLUG],
        request=SignOffInputSerializer,
        responses={
            201: SignOffOutputSerializer,
            **error_responses(
                400,
                403,
                409,
                415,
                descriptions={
                    409: "The dimension is failing (nobody signs off what is failing), or it is "
                    "already signed off on these results."
                },
            ),
        },
    )
    def post(self, request: Request, slug: str) -> Response:
        project = project_for_caller(request, slug, token_scope=PEOPLE_ONLY)
        data = _valid_body(SignOffInputSerializer, request.data)
        signoff = signoff_create(
            project=project, dimension=data["dimension"], by=request.user, note=data["note"]
        )
        return Response(SignOffOutputSerializer(signoff).data, status=status.HTTP_201_CREATED)


class WaiverRequestApi(APIView):
    @extend_schema(
        operation_id="projects_waivers_create",
        summary="Request a waiver of a criterion (a project member); it starts pending",
        parameters=[SLUG],
        request=WaiverInputSerializer,
        responses={201: WaiverOutputSerializer, **error_responses(400, 403, 415)},
    )
    def post(self, request: Request, slug: str) -> Response:
        project = project_for_caller(request, slug, token_scope=PEOPLE_ONLY)
        data = _valid_body(WaiverInputSerializer, request.data)
        criterion = _criterion_named_in_body(project, data["criterion"])
        waiver = waiver_request(
            criterion=criterion, by=request.user, reason=data["reason"], expires_at=data["expires_at"]
        )
        return Response(WaiverOutputSerializer(waiver).data, status=status.HTTP_201_CREATED)


WAIVER_DECISION_SCHEMA = {
    "parameters": [WAIVER_ID],
    "request": None,
    "responses": {
        200: WaiverOutputSerializer,
        **error_responses(400, 403, 409, descriptions={409: "The waiver is already decided."}),
    },
}


class WaiverApproveApi(APIView):
    @extend_schema(
        operation_id="waivers_approve",
        summary="Approve a pending waiver (the responsible person or an admin, not the requester)",
        **WAIVER_DECISION_SCHEMA,
    )
    def post(self, request: Request, waiver_id: int) -> Response:
        waiver = waiver_approve(waiver=waiver_for_caller(request, waiver_id), by=request.user)
        return Response(WaiverOutputSerializer(waiver).data)


class WaiverRejectApi(APIView):
    @extend_schema(
        operation_id="waivers_reject",
        summary="Reject a pending waiver (the responsible person or an admin, not the requester)",
        **WAIVER_DECISION_SCHEMA,
    )
    def post(self, request: Request, waiver_id: int) -> Response:
        waiver = waiver_reject(waiver=waiver_for_caller(request, waiver_id), by=request.user)
        return Response(WaiverOutputSerializer(waiver).data)


class CriterionNotApplicableApi(APIView):
    """One URL, two operations: POST marks the criterion not applicable, DELETE undoes it."""

    @extend_schema(
        operation_id="projects_criteria_not_applicable_create",
        summary="Mark a criterion not applicable, with a reason (its dimension's responsible person)",
        parameters=[SLUG, KEY],
        request=NotApplicableInputSerializer,
        responses={200: CriterionApplicabilityOutputSerializer, **error_responses(400, 403, 415)},
    )
    def post(self, request: Request, slug: str, key: str) -> Response:
        criterion = criterion_for_caller(request, slug, key, token_scope=PEOPLE_ONLY)
        data = _valid_body(NotApplicableInputSerializer, request.data)
        criterion = criterion_mark_not_applicable(criterion=criterion, by=request.user, reason=data["reason"])
        return Response(CriterionApplicabilityOutputSerializer(criterion).data)

    @extend_schema(
        operation_id="projects_criteria_not_applicable_destroy",
        summary="Make a criterion applicable again (its dimension's responsible person)",
        parameters=[SLUG, KEY],
        request=None,
        responses={204: None, **error_responses(403)},
    )
    def delete(self, request: Request, slug: str, key: str) -> Response:
        criterion = criterion_for_caller(request, slug, key, token_scope=PEOPLE_ONLY)
        criterion_clear_not_applicable(criterion=criterion, by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
