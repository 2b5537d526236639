"""Who may call what, for every endpoint at once (PRODUCT.md §2, §3): anonymous → 401, a project the
caller may not read → 404 (never 403, for tokens too), wrong method → 405, all in the error shape."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client

from readiness.projects.models import ProjectToken
from readiness.projects.services import token_create, token_revoke
from tests.api.conftest import World, assert_error


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # formatted with slug, waiver and key
    body: dict[str, Any] | None = None
    token_scope: str | None = "scorecard:read"  # None: people only

    def url(self, world: World, slug: str | None = None) -> str:
        return self.path.format(slug=slug or world.project.slug, waiver=world.waiver.pk)

    def call(self, client: Client, world: World, slug: str | None = None, method: str | None = None) -> Any:
        return getattr(client, method or self.method)(
            self.url(world, slug), data=self.body, content_type="application/json"
        )

    def __str__(self) -> str:
        return f"{self.method.upper()} {self.path}"


READS = [
    Endpoint("get", "/api/v1/projects/{slug}/"),
    Endpoint("get", "/api/v1/projects/{slug}/scorecard"),
    Endpoint("get", "/api/v1/projects/{slug}/scorecards"),
    Endpoint("get", "/api/v1/projects/{slug}/metrics/latency_ms"),
    Endpoint("get", "/api/v1/projects/{slug}/gate"),
]
ATTEST = Endpoint(
    "post",
    "/api/v1/projects/{slug}/attestations",
    {"criterion": "model_card", "evidence_url": "https://ci.example.com/run/1", "note": ""},
    token_scope="attest",
)
PEOPLE_ONLY = [
    Endpoint("post", "/api/v1/projects/{slug}/signoffs", {"dimension": "security"}, token_scope=None),
    Endpoint(
        "post",
        "/api/v1/projects/{slug}/waivers",
        {"criterion": "p99_latency", "reason": "load test next week", "expires_at": "2099-01-01T00:00:00Z"},
        token_scope=None,
    ),
    Endpoint("post", "/api/v1/waivers/{waiver}/approve", token_scope=None),
    Endpoint("post", "/api/v1/waivers/{waiver}/reject", token_scope=None),
    Endpoint(
        "post",
        "/api/v1/projects/{slug}/criteria/model_card/not-applicable",
        {"reason": "n/a"},
        token_scope=None,
    ),
    Endpoint("delete", "/api/v1/projects/{slug}/criteria/model_card/not-applicable", token_scope=None),
]
PROJECT_ENDPOINTS = [*READS, ATTEST, *PEOPLE_ONLY]
LIST = Endpoint("get", "/api/v1/projects/")
ALL_ENDPOINTS = [LIST, *PROJECT_ENDPOINTS]
# A method each endpoint does not allow.
WRONG_METHOD = {"get": "put", "post": "get", "delete": "patch"}

each_endpoint = pytest.mark.parametrize("endpoint", ALL_ENDPOINTS, ids=str)
each_project_endpoint = pytest.mark.parametrize("endpoint", PROJECT_ENDPOINTS, ids=str)
# The endpoints addressed by project slug (the waiver decisions are addressed by waiver id).
each_slug_endpoint = pytest.mark.parametrize(
    "endpoint", [e for e in PROJECT_ENDPOINTS if "{slug}" in e.path], ids=str
)


@each_endpoint
def test_anonymous_caller_gets_401_with_bearer_challenge(world: World, endpoint: Endpoint) -> None:
    response = endpoint.call(Client(), world)
    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")


@each_endpoint
def test_unknown_bearer_token_gets_401(world: World, endpoint: Endpoint) -> None:
    client = Client(headers={"Authorization": "Bearer rdy_not-a-real-token"})
    response = endpoint.call(client, world)
    assert_error(response, 401, "authentication_failed")
    assert response["WWW-Authenticate"].startswith("Bearer")


@each_endpoint
def test_revoked_token_gets_401(world: World, endpoint: Endpoint) -> None:
    token, secret = token_create(project=world.project, name="old", scopes=["scorecard:read", "attest"])
    token_revoke(token=token)
    response = endpoint.call(Client(headers={"Authorization": f"Bearer {secret}"}), world)
    assert_error(response, 401, "authentication_failed")


@each_project_endpoint
def test_outsider_gets_404_never_403(world: World, endpoint: Endpoint, as_user: Callable) -> None:
    assert_error(endpoint.call(as_user(world.cast.outsider), world), 404, "not_found")


@each_slug_endpoint
def test_unknown_project_gets_404(world: World, endpoint: Endpoint, as_user: Callable) -> None:
    assert_error(endpoint.call(as_user(world.cast.admin), world, slug="no-such-project"), 404)


@each_project_endpoint
def test_token_of_another_project_gets_404(world: World, endpoint: Endpoint, bearer: Callable) -> None:
    assert_error(endpoint.call(bearer(world.other), world), 404, "not_found")


@each_slug_endpoint
def test_token_with_another_projects_slug_gets_404_not_the_other_project(
    world: World, endpoint: Endpoint, bearer: Callable
) -> None:
    assert_error(endpoint.call(bearer(world.project), world, slug=world.other.slug), 404)


@pytest.mark.parametrize("endpoint", [*READS, ATTEST], ids=str)
def test_token_without_the_scope_gets_403(world: World, endpoint: Endpoint, bearer: Callable) -> None:
    other_scopes = [s for s in ("metrics:write", "scorecard:read", "attest") if s != endpoint.token_scope]
    assert_error(endpoint.call(bearer(world.project, other_scopes), world), 403, "permission_denied")


@pytest.mark.parametrize("endpoint", [*READS, ATTEST], ids=str)
def test_token_with_the_scope_is_served(world: World, endpoint: Endpoint, bearer: Callable) -> None:
    response = endpoint.call(bearer(world.project, [endpoint.token_scope]), world)
    assert response.status_code in (200, 201, 412), response.content


@pytest.mark.parametrize("endpoint", PEOPLE_ONLY, ids=str)
def test_token_with_every_scope_may_not_take_a_people_only_action(
    world: World, endpoint: Endpoint, bearer: Callable
) -> None:
    assert_error(endpoint.call(bearer(world.project), world), 403, "permission_denied")


@each_endpoint
def test_wrong_method_gets_405_in_error_shape(world: World, endpoint: Endpoint, as_user: Callable) -> None:
    response = endpoint.call(as_user(world.cast.admin), world, method=WRONG_METHOD[endpoint.method])
    assert_error(response, 405, "method_not_allowed")


def test_token_use_is_recorded(world: World) -> None:
    token, secret = token_create(project=world.project, name="ci", scopes=["scorecard:read"])
    Client(headers={"Authorization": f"Bearer {secret}"}).get("/api/v1/projects/")
    assert ProjectToken.objects.get(pk=token.pk).last_used_at is not None


def test_bearer_token_wins_over_a_session(world: World, as_user: Callable) -> None:
    # An admin session with a bad token in the header: the header is what the caller meant.
    client = as_user(world.cast.admin)
    response = client.get("/api/v1/projects/", headers={"Authorization": "Bearer rdy_nope"})
    assert_error(response, 401)


def test_unknown_api_url_is_a_404_in_error_shape(world: World, as_user: Callable) -> None:
    assert_error(as_user(world.cast.admin).get("/api/v1/no/such/thing"), 404, "not_found")
    assert_error(Client().get("/api/v1/waivers/abc/approve"), 404, "not_found")


def test_unexpected_error_is_a_json_500(
    world: World, bearer: Callable, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(**kwargs: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("readiness.api.views_read.latest_scorecard", broken)
    client = bearer(world.project)
    client.raise_request_exception = False
    error = assert_error(client.get("/api/v1/projects/fraud-detector/scorecard"), 500, "server_error")
    assert "boom" not in error["message"]


def test_the_catch_all_does_not_hide_the_metrics_push_endpoint(world: World) -> None:
    response = Client().post("/api/v1/metrics", data={"points": []}, content_type="application/json")
    assert response.status_code == 401


def test_session_post_without_csrf_token_is_refused(world: World) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.cast.data_science)
    response = ATTEST.call(client, world)
    error = assert_error(response, 403, "permission_denied")
    assert "CSRF" in error["message"]
    assert not world.model_card.attestations.exists()


def test_session_post_with_csrf_token_is_accepted(world: World) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.cast.data_science)
    client.get("/admin/login/")  # any page that sets the CSRF cookie
    csrf = client.cookies["csrftoken"].value
    response = client.post(
        ATTEST.url(world), data=ATTEST.body, content_type="application/json", headers={"X-CSRFToken": csrf}
    )
    assert response.status_code == 201, response.content


def test_token_post_needs_no_csrf_token(world: World, bearer: Callable) -> None:
    client = bearer(world.project, ["attest"])
    client.handler.enforce_csrf_checks = True
    assert ATTEST.call(client, world).status_code == 201


def test_non_json_body_gets_415(world: World, bearer: Callable) -> None:
    response = bearer(world.project).post(
        ATTEST.url(world), data="criterion=model_card", content_type="application/x-www-form-urlencoded"
    )
    assert_error(response, 415, "unsupported_media_type")


def test_malformed_json_gets_400(world: World, bearer: Callable) -> None:
    response = bearer(world.project).post(
        ATTEST.url(world), data="{not json", content_type="application/json"
    )
    assert_error(response, 400, "parse_error")


def test_json_that_is_not_an_object_gets_400(world: World, bearer: Callable) -> None:
    response = bearer(world.project).post(ATTEST.url(world), data="[1, 2]", content_type="application/json")
    error = assert_error(response, 400, "invalid_input")
    assert "non_field_errors" in error["details"]
