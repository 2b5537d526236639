"""``/healthz``, ``/readyz`` and ``/metrics``: how orchestrators and Prometheus see a Readiness process.

They are answered by ``OpsEndpointsMiddleware`` ahead of host validation, the HTTPS redirect, sessions
and the rate limit: a kubelet or Prometheus addresses a pod by its IP over plain HTTP, and none of
these responses builds a URL or reads a cookie, which is what those layers protect.
"""

from __future__ import annotations

import hmac

import orjson
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from readiness.observability.checks import broker_state, database_state
from readiness.observability.metrics import metrics_exposition
from readiness.security.bearer import bearer_secret
from readiness.security.errors import error_response


def _json(status: int, body: dict[str, object]) -> HttpResponse:
    response = HttpResponse(orjson.dumps(body), status=status, content_type="application/json")
    # A probe's answer is about this instant: never served from a cache.
    response["Cache-Control"] = "no-store"
    return response


def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness: the process answers. No database or broker call: a database outage must not make
    an orchestrator restart every web process (which would not fix the database)."""
    return _json(200, {"status": "ok"})


def readyz(request: HttpRequest) -> HttpResponse:
    """Readiness: the database and the broker are reachable, so this process can take traffic.
    The body names what failed; the error itself goes to the log, not to an unauthenticated caller."""
    states = [database_state(), broker_state()]
    checks = {state.name: "ok" if state.ok else "unreachable" for state in states}
    ready = all(state.ok for state in states)
    return _json(200 if ready else 503, {"status": "ok" if ready else "unavailable", "checks": checks})


def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus exposition, for a scraper holding ``READINESS_METRICS_TOKEN``; 404 when unset."""
    expected = settings.READINESS_METRICS_TOKEN
    if not expected:
        # Disabled: the endpoint does not exist rather than being open.
        return error_response(404, "not_found", "Not found.")
    secret = bearer_secret(request)
    if secret is None:
        return error_response(
            401,
            "unauthenticated",
            "send Authorization: Bearer <READINESS_METRICS_TOKEN>",
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    # Constant time: the comparison must not tell a guesser how many leading characters were right.
    if not hmac.compare_digest(secret.encode(), expected.encode()):
        return error_response(403, "forbidden", "wrong metrics token")
    if request.method not in ("GET", "HEAD"):
        return error_response(405, "method_not_allowed", "use GET", headers={"Allow": "GET, HEAD"})
    response = HttpResponse(metrics_exposition(), content_type=CONTENT_TYPE_PLAIN_0_0_4)
    response["Cache-Control"] = "no-store"
    return response


ENDPOINTS = {"/healthz": healthz, "/readyz": readyz, "/metrics": metrics}
