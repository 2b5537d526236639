"""OpenAPI helpers: the bearer-token security scheme and the documented error responses."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse

from readiness.api.serializers import ErrorSerializer

ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "Invalid input; `details` names each problem.",
    401: "No valid credentials (anonymous, or an unknown or revoked token).",
    403: "The caller may read the project but lacks the token scope or the role for this.",
    404: "No such project (or one the caller may not read), or no such object in it.",
    409: "The action contradicts the current state.",
    415: "The body is not `application/json`.",
}


def error_responses(*statuses: int, descriptions: dict[int, str] | None = None) -> dict[int, OpenApiResponse]:
    """The error responses of an operation, all in the one error shape. 401 and 404 always apply."""
    described = ERROR_DESCRIPTIONS | (descriptions or {})
    return {
        code: OpenApiResponse(ErrorSerializer, description=described[code])
        for code in sorted({401, 404, *statuses})
    }


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "readiness.api.authentication.BearerTokenAuthentication"
    name = "projectToken"

    def get_security_definition(self, auto_schema: object) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A project API token (`rdy_...`), scoped to one project: "
            "`scorecard:read`, `attest`, `metrics:write`.",
        }


def add_rate_limit_responses(result: dict, generator: object, request: object, public: bool) -> dict:
    """drf-spectacular postprocessing hook: every API operation may answer 429 to a token over its
    rate (readiness/security/ratelimit.py, a middleware the views never see), so document it once
    here for all of them instead of on each view."""
    too_many = {
        "description": "This token is over its rate limit (`READINESS_API_RATE_LIMIT`); retry after "
        "`Retry-After` seconds.",
        "headers": {
            "Retry-After": {"description": "Seconds until the next window.", "schema": {"type": "integer"}}
        },
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            operation.setdefault("responses", {}).setdefault("429", too_many)
    return result
