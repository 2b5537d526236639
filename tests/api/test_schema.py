"""The OpenAPI document, the Swagger UI page, and a bounded schemathesis run against the real app."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
import schemathesis
from django.contrib.staticfiles import finders
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import Client
from hypothesis import HealthCheck, given, settings

from readiness.projects.services import token_create
from tests.api.conftest import ALL_SCOPES, World

API_PATHS = {
    "/api/v1/projects/",
    "/api/v1/projects/{slug}/",
    "/api/v1/projects/{slug}/scorecard",
    "/api/v1/projects/{slug}/scorecards",
    "/api/v1/projects/{slug}/metrics/{metric}",
    "/api/v1/projects/{slug}/gate",
    "/api/v1/projects/{slug}/attestations",
    "/api/v1/projects/{slug}/signoffs",
    "/api/v1/projects/{slug}/waivers",
    "/api/v1/waivers/{waiver_id}/approve",
    "/api/v1/waivers/{waiver_id}/reject",
    "/api/v1/projects/{slug}/criteria/{key}/not-applicable",
}


@pytest.fixture
def openapi(db: None) -> dict:
    response = Client().get("/api/v1/schema/", headers={"Accept": "application/json"})
    assert response.status_code == 200
    return response.json()


def test_schema_is_an_openapi_3_document_naming_every_endpoint(openapi: dict) -> None:
    assert openapi["openapi"].startswith("3.")
    assert openapi["info"]["title"] == "Readiness API"
    assert set(openapi["paths"]) >= API_PATHS


def test_schema_passes_openapi_validation(openapi: dict) -> None:
    from drf_spectacular.validation import validate_schema

    validate_schema(openapi)


def test_schema_documents_request_and_response_bodies(openapi: dict) -> None:
    paths = openapi["paths"]
    attest = paths["/api/v1/projects/{slug}/attestations"]["post"]
    assert attest["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/AttestationInput"
    )
    assert set(attest["responses"]) >= {"201", "400", "401", "403", "404"}
    gate = paths["/api/v1/projects/{slug}/gate"]["get"]["responses"]
    assert gate["200"]["content"] == gate["412"]["content"]
    error = openapi["components"]["schemas"]["Error"]
    assert error["properties"]["error"]["$ref"].endswith("/ErrorDetail")


def test_schema_documents_the_otlp_receiver_in_both_encodings(openapi: dict) -> None:
    otlp = openapi["paths"]["/api/v1/otlp/v1/metrics"]["post"]
    assert set(otlp["requestBody"]["content"]) == {"application/x-protobuf", "application/json"}
    assert otlp["requestBody"]["content"]["application/x-protobuf"]["schema"]["format"] == "binary"
    answers = otlp["responses"]
    assert set(answers["200"]["content"]) == {"application/x-protobuf", "application/json"}
    assert answers["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/OtlpExportResponse")
    assert answers["400"]["content"]["application/json"]["schema"]["$ref"].endswith("/PushError")
    assert set(answers) >= {"200", "400", "401", "403", "413", "415", "429", "503"}
    assert "Retry-After" in answers["429"]["headers"]


def test_every_operation_documents_the_rate_limit_answer(openapi: dict) -> None:
    operations = [op for ops in openapi["paths"].values() for op in ops.values()]
    assert operations and all("429" in op["responses"] for op in operations)
    push = openapi["paths"]["/api/v1/metrics"]["post"]["responses"]["429"]
    assert "Retry-After" in push["headers"]
    assert push["content"]["application/json"]["schema"]["$ref"].endswith("/Error")


def test_schema_declares_bearer_token_and_session_security(openapi: dict) -> None:
    schemes = openapi["components"]["securitySchemes"]
    assert schemes["projectToken"] == {**schemes["projectToken"], "type": "http", "scheme": "bearer"}
    assert "cookieAuth" in schemes
    gate = openapi["paths"]["/api/v1/projects/{slug}/gate"]["get"]
    assert {"projectToken": []} in gate["security"] and {} not in gate["security"]


def test_docs_page_loads_its_assets_locally(db: None) -> None:
    response = Client().get("/api/v1/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assets = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
    assert any("swagger-ui-bundle" in url for url in assets)
    assert all(url.startswith("/") and not url.startswith("//") for url in assets), assets
    assert "http://" not in html and "https://" not in html
    # Swagger UI's start-up script is served by the view itself (?script), not inline (the CSP).
    start_up = [url for url in assets if url.startswith("/api/v1/docs/")]
    assert start_up == ["/api/v1/docs/?script="]
    assert "/api/v1/schema/" in Client().get(start_up[0]).content.decode()
    for url in set(assets) - set(start_up):  # every other asset is a static file we ship (the sidecar's)
        assert url.startswith("/static/")
        assert finders.find(url.removeprefix("/static/")) is not None, url


# --- Fuzzing --------------------------------------------------------------------------------------


@pytest.fixture
def wsgi_app(db: None) -> Iterator[Callable]:
    """The real WSGI app, inside the test's transaction. Like Django's test client, stop the
    request signals from closing the connection, which would end the transaction under the test."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield get_wsgi_application()
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.fixture
def credentials(world: World, request: pytest.FixtureRequest) -> dict[str, dict[str, str]]:
    """Headers and cookies of a valid caller: a token with every scope, or an admin's session (which
    reaches past the token's 403 into the people-only actions)."""
    if request.param == "token":
        _, secret = token_create(project=world.project, name="fuzz", scopes=ALL_SCOPES)
        return {"headers": {"Authorization": f"Bearer {secret}"}, "cookies": {}}
    client = Client()
    client.force_login(world.cast.admin)
    csrf = "a" * 32  # any well-formed secret: the CSRF check compares the header with the cookie
    return {
        "headers": {"X-CSRFToken": csrf},
        "cookies": {"sessionid": client.cookies["sessionid"].value, "csrftoken": csrf},
    }


@pytest.mark.parametrize("credentials", ["token", "admin session"], indirect=True)
def test_fuzzed_requests_never_get_a_5xx(
    world: World, wsgi_app: Callable, credentials: dict[str, dict[str, str]]
) -> None:
    schema = schemathesis.openapi.from_wsgi("/api/v1/schema/", wsgi_app)
    # Aim the path parameters at real objects so requests get past the 404s into the views.
    real = {"slug": "fraud-detector", "key": "model_card", "waiver_id": world.waiver.pk}
    operations = [result.ok() for result in schema.get_all_operations()]
    ours = [op for op in operations if op.path in API_PATHS]
    assert len(ours) == len(API_PATHS) + 1  # not-applicable has POST and DELETE
    server_errors: list[str] = []
    for operation in ours:

        @settings(
            max_examples=10,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def call(case: schemathesis.Case) -> None:
            if case.path_parameters:
                fixed = {name: value for name, value in real.items() if name in case.path_parameters}
                case.path_parameters = {**case.path_parameters, **fixed}
            response = case.call(**credentials)
            if response.status_code >= 500:
                server_errors.append(
                    f"{case.method} {case.formatted_path} {case.query}: {response.text[:300]}"
                )
            headers = {name.lower(): values for name, values in response.headers.items()}
            assert response.status_code == 204 or headers["content-type"][0].startswith("application/json")

        call()
    assert server_errors == []
