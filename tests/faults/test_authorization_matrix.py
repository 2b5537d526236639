"""The authorization matrix (issue 6, item 5): every endpoint and page x every role, the expected
answer of each cell in ONE table, checked against the running app (PRODUCT.md §2, §3, §5).

The rules the table spells out: a project the caller may not read does not exist for it (404, for
people and tokens alike, never 403); anonymous API calls are 401 and anonymous pages redirect to the
login; a valid caller lacking a scope or a role gets 403 on a project it may read; sign-offs, waivers
and not-applicable marks are for people only; leadership reads everything and changes nothing; a
waiver's requester never decides it; /admin/ is for staff; /metrics wants its own bearer token.

Each row is tested by one parametrized test that walks the row's roles, every cell inside a savepoint
rolled back afterwards: every cell sees the same state (a sign-off, a waiver decision or a logout in
one cell never changes the answer of the next), while the state is built once per row.
``test_every_route_has_a_row`` walks ``django.urls.get_resolver()``: a new route or a new API method
without a row fails the suite.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.utils import timezone

from readiness.observability.views import ENDPOINTS
from readiness.projects.models import Project
from readiness.projects.services import token_create, token_revoke
from readiness.scoring.models import Waiver
from tests.conftest import Cast
from tests.factories import (
    AttestationCriterionFactory,
    MetricCriterionFactory,
    MetricPointFactory,
    ProjectFactory,
    TeamFactory,
    UserFactory,
    WaiverFactory,
)
from tests.faults.conftest import FIGURES

METRICS_TOKEN = "scrape-me-0123456789abcdef"

# The columns, in the table's order. People log in with a session; tokens send `Authorization: Bearer`.
ROLES: dict[str, str] = {
    "adm": "admin (staff)",
    "led": "leadership",
    "dsc": "data_science responsible (alice)",
    "eng": "engineering responsible (bob)",
    "prd": "product responsible (carol)",
    "sec": "security responsible (dave)",
    "mem": "team member without a dimension (mia)",
    "out": "outsider: logged in, not on the team (oscar)",
    "ano": "anonymous",
    "wrt": "token of this project, metrics:write only",
    "rdt": "token of this project, scorecard:read only",
    "att": "token of this project, attest only",
    "all": "token of this project with all three scopes",
    "rvk": "revoked token of this project (all scopes)",
    "oth": "token of another project (all scopes)",
    "scr": "Prometheus scraper (READINESS_METRICS_TOKEN as bearer)",
}


@dataclass(frozen=True)
class Redirect:
    """A 302 to ``path`` (its query and fragment aside)."""

    path: str

    def __str__(self) -> str:
        return f"302→{self.path}"


# Redirects, 3 letters wide so the table stays aligned.
REDIRECTS = {
    "LGN": Redirect("/login/"),  # to the login page (login_required, logout)
    "BCK": Redirect("/projects/fraud-detector/"),  # an action done: back to the scorecard
    "HOM": Redirect("/"),  # the login page, to someone already logged in: the portfolio
    "ADM": Redirect("/admin/login/"),  # the admin console, to anyone but staff
}
Expected = int | Redirect


@dataclass(frozen=True)
class Row:
    method: str
    url: str  # a template: {p} this project, {other} another team's, {mw}/{ow}/{aw}/{xw} pending waivers
    body: dict[str, Any] | None
    cells: dict[str, Expected]

    def __str__(self) -> str:
        return f"{self.method} {self.url}"


def row(method: str, url: str, body: dict[str, Any] | None, line: str) -> Row:
    codes = line.split()
    assert len(codes) == len(ROLES), f"{method} {url}: {len(codes)} cells for {len(ROLES)} roles"
    cells = {
        role: REDIRECTS[code] if code in REDIRECTS else int(code)
        for role, code in zip(ROLES, codes, strict=True)
    }
    return Row(method, url, body, cells)


# Bodies. API bodies go as JSON, page bodies as a form; "{in_30_days}" is filled in at run time.
PUSH = {"points": [{"metric": "latency_ms", "value": 120.0}]}
OTLP_EXPORT = {"resourceMetrics": []}  # OTLP JSON: an empty export, accepted with 200
ATTEST_CARD = {"criterion": "model_card", "evidence_url": "https://ci.example.com/run/1", "note": ""}
ATTEST_P99 = {"criterion": "p99_latency", "evidence_url": "https://ci.example.com/run/1", "note": ""}
SIGN_DS = {"dimension": "data_science", "note": ""}
SIGN_ENG = {"dimension": "engineering", "note": ""}
WAIVE_API = {"criterion": "p99_latency", "reason": "load test next week", "expires_at": "{in_30_days}"}
NA_REASON = {"reason": "no external surface"}
EVIDENCE = {"evidence_url": "https://wiki.example.com/model-card", "note": ""}
WAIVE_FORM = {"reason": "load test next week", "expires_at": "{in_30_days_date}"}
NOTE = {"note": ""}
BAD_LOGIN = {"username": "nobody", "password": "wrong-password"}

# The state every row runs against (built by `state` below):
# - fraud-detector (pilot, high risk: the target is production, so sign-offs count), team fraud.
# - data_science FAILS: model_card (attestation, blocker) was never attested.
# - engineering WARNS: p99_latency (metric, blocker) passes on a point of 100 ms; score_drift (drift,
#   advisory) has no data: missing, which for an advisory criterion is a warning, not a block.
# - security FAILS: pen_test (attestation) missing; threat_model is marked not applicable.
# - product has no criteria: it passes.
# - waiver {mw}: pending, on p99_latency, requested by the member mia; waiver {ow}: pending, on
#   p99_latency, requested by bob, the engineering responsible person himself; waiver {aw}: the same,
#   requested by the admin.
# - churn-model: another team's project, with its own token (the "oth" column) and a pending waiver
#   {xw} requested by rita, of its team.
# fmt: off
MATRIX: tuple[Row, ...] = (
    # --- REST API: push (a bearer token with metrics:write; a session is no credential here) ----------
    #    adm led dsc eng prd sec mem out ano wrt rdt att all rvk oth scr
    row("POST", "/api/v1/metrics", PUSH,
        "401 401 401 401 401 401 401 401 401 202 403 403 202 401 202 401"),
    row("POST", "/api/v1/otlp/v1/metrics", OTLP_EXPORT,
        "401 401 401 401 401 401 401 401 401 200 403 403 200 401 200 401"),
    # --- REST API: read ------------------------------------------------------------------------------
    #    adm led dsc eng prd sec mem out ano wrt rdt att all rvk oth scr
    row("GET", "/api/v1/projects/", None,
        "200 200 200 200 200 200 200 200 401 403 200 403 200 401 200 401"),
    row("GET", "/api/v1/projects/{p}/", None,
        "200 200 200 200 200 200 200 404 401 403 200 403 200 401 404 401"),
    row("GET", "/api/v1/projects/{other}/", None,
        "200 200 404 404 404 404 404 404 401 404 404 404 404 401 200 401"),
    row("GET", "/api/v1/projects/{p}/scorecard", None,
        "200 200 200 200 200 200 200 404 401 403 200 403 200 401 404 401"),
    row("GET", "/api/v1/projects/{p}/scorecard?target=pilot", None,
        "200 200 200 200 200 200 200 404 401 403 200 403 200 401 404 401"),
    row("GET", "/api/v1/projects/{p}/scorecards", None,
        "200 200 200 200 200 200 200 404 401 403 200 403 200 401 404 401"),
    row("GET", "/api/v1/projects/{p}/metrics/latency_ms?window=24h&aggregation=p99", None,
        "200 200 200 200 200 200 200 404 401 403 200 403 200 401 404 401"),
    # no-go (data_science and security fail): 412 to whoever may read it.
    row("GET", "/api/v1/projects/{p}/gate?target=production", None,
        "412 412 412 412 412 412 412 404 401 403 412 403 412 401 404 401"),
    # --- REST API: act ---------------------------------------------------------------------------------
    #    adm led dsc eng prd sec mem out ano wrt rdt att all rvk oth scr
    row("POST", "/api/v1/projects/{p}/attestations", ATTEST_CARD,
        "201 403 201 403 403 403 403 404 401 403 403 201 201 401 404 401"),
    # The role is checked before the input: only those who may attest learn it is not an attestation.
    row("POST", "/api/v1/projects/{p}/attestations", ATTEST_P99,
        "400 403 403 400 403 403 403 404 401 403 403 400 400 401 404 401"),
    # data_science fails: nobody signs off what is failing (409), and only its owner or an admin may try.
    row("POST", "/api/v1/projects/{p}/signoffs", SIGN_DS,
        "409 403 409 403 403 403 403 404 401 403 403 403 403 401 404 401"),
    row("POST", "/api/v1/projects/{p}/signoffs", SIGN_ENG,
        "201 403 403 201 403 403 403 404 401 403 403 403 403 401 404 401"),
    row("POST", "/api/v1/projects/{p}/waivers", WAIVE_API,
        "201 403 201 201 201 201 201 404 401 403 403 403 403 401 404 401"),
    row("POST", "/api/v1/waivers/{mw}/approve", None,
        "200 403 403 200 403 403 403 404 401 403 403 403 403 401 404 401"),
    row("POST", "/api/v1/waivers/{mw}/reject", None,
        "200 403 403 200 403 403 403 404 401 403 403 403 403 401 404 401"),
    # Requested by bob: he may not decide his own waiver, even as the responsible person.
    row("POST", "/api/v1/waivers/{ow}/approve", None,
        "200 403 403 403 403 403 403 404 401 403 403 403 403 401 404 401"),
    row("POST", "/api/v1/waivers/{ow}/reject", None,
        "200 403 403 403 403 403 403 404 401 403 403 403 403 401 404 401"),
    # Requested by the admin: not even an admin decides their own waiver; bob, responsible, does.
    row("POST", "/api/v1/waivers/{aw}/approve", None,
        "403 403 403 200 403 403 403 404 401 403 403 403 403 401 404 401"),
    # A waiver of churn-model: it does not exist for fraud-detector's people and tokens; churn-model's
    # own token reads it but, being a token, may not decide it.
    row("POST", "/api/v1/waivers/{xw}/approve", None,
        "200 403 404 404 404 404 404 404 401 404 404 404 404 401 403 401"),
    row("POST", "/api/v1/projects/{p}/criteria/pen_test/not-applicable", NA_REASON,
        "200 403 403 403 403 200 403 404 401 403 403 403 403 401 404 401"),
    row("DELETE", "/api/v1/projects/{p}/criteria/threat_model/not-applicable", None,
        "204 403 403 403 403 204 403 404 401 403 403 403 403 401 404 401"),
    # --- REST API: documentation (public: it describes the API, not a project) and unknown URLs ------
    #    adm led dsc eng prd sec mem out ano wrt rdt att all rvk oth scr
    row("GET", "/api/v1/schema/", None,
        "200 200 200 200 200 200 200 200 200 200 200 200 200 401 200 401"),
    row("GET", "/api/v1/docs/", None,
        "200 200 200 200 200 200 200 200 200 200 200 200 200 401 200 401"),
    row("GET", "/api/v1/no-such-endpoint", None,
        "404 404 404 404 404 404 404 404 404 404 404 404 404 404 404 404"),
    # --- Pages (sessions only: a bearer token is no login) ---------------------------------------------
    #    adm led dsc eng prd sec mem out ano wrt rdt att all rvk oth scr
    row("GET", "/", None,
        "200 200 200 200 200 200 200 200 LGN LGN LGN LGN LGN LGN LGN LGN"),
    row("GET", "/projects/{p}/", None,
        "200 200 200 200 200 200 200 404 LGN LGN LGN LGN LGN LGN LGN LGN"),
    row("GET", "/projects/{other}/", None,
        "200 200 404 404 404 404 404 404 LGN LGN LGN LGN LGN LGN LGN LGN"),
    row("GET", "/projects/{p}/history/", None,
        "200 200 200 200 200 200 200 404 LGN LGN LGN LGN LGN LGN LGN LGN"),
    row("GET", "/projects/{p}/report/", None,
        "200 200 200 200 200 200 200 404 LGN LGN LGN LGN LGN LGN LGN LGN"),
    # The audit log is the team's and the admins' (PRODUCT.md §2): leadership reads the project, not it.
    row("GET", "/projects/{p}/audit/", None,
        "200 403 200 200 200 200 200 404 LGN LGN LGN LGN LGN LGN LGN LGN"),
    row("GET", "/portfolio.csv", None,
        "200 200 200 200 200 200 200 200 LGN LGN LGN LGN LGN LGN LGN LGN"),
    row("GET", "/portfolio.json", None,
        "200 200 200 200 200 200 200 200 LGN LGN LGN LGN LGN LGN LGN LGN"),
    # --- Page actions (POST, the same services as the API: the same rules) -----------------------------
    #    adm led dsc eng prd sec mem out ano wrt rdt att all rvk oth scr
    row("POST", "/projects/{p}/criteria/model_card/attest/", EVIDENCE,
        "BCK 403 BCK 403 403 403 403 404 LGN LGN LGN LGN LGN LGN LGN LGN"),
    row("POST", "/projects/{p}/criteria/pen_test/not-applicable/", NA_REASON,
        "BCK 403 403 403 403 BCK 403 404 LGN LGN LGN LGN LGN LGN LGN LGN"),
    row("POST", "/projects/{p}/criteria/threat_model/applicable/", None,
        "BCK 403 403 403 403 BCK 403 404 LGN LGN LGN LGN LGN LGN LGN LGN"),
    row("POST", "/projects/{p}/criteria/p99_latency/waivers/", WAIVE_FORM,
        "BCK 403 BCK BCK BCK BCK BCK 404 LGN LGN LGN LGN LGN LGN LGN LGN"),
    row("POST", "/projects/{p}/waivers/{mw}/approve/", None,
        "BCK 403 403 BCK 403 403 403 404 LGN LGN LGN LGN LGN LGN LGN LGN"),
    row("POST", "/projects/{p}/waivers/{mw}/reject/", None,
        "BCK 403 403 BCK 403 403 403 404 LGN LGN LGN LGN LGN LGN LGN LGN"),
    row("POST", "/projects/{p}/waivers/{ow}/approve/", None,
        "BCK 403 403 403 403 403 403 404 LGN LGN LGN LGN LGN LGN LGN LGN"),
    row("POST", "/projects/{p}/waivers/{ow}/reject/", None,
        "BCK 403 403 403 403 403 403 404 LGN LGN LGN LGN LGN LGN LGN LGN"),
    row("POST", "/projects/{p}/waivers/{aw}/approve/", None,
        "403 403 403 BCK 403 403 403 404 LGN LGN LGN LGN LGN LGN LGN LGN"),
    # churn-model's waiver addressed under fraud-detector's URL: not a waiver of this project, for anyone.
    row("POST", "/projects/{p}/waivers/{xw}/approve/", None,
        "404 404 404 404 404 404 404 404 LGN LGN LGN LGN LGN LGN LGN LGN"),
    row("POST", "/projects/{p}/dimensions/data_science/signoff/", NOTE,
        "409 403 409 403 403 403 403 404 LGN LGN LGN LGN LGN LGN LGN LGN"),
    row("POST", "/projects/{p}/dimensions/engineering/signoff/", NOTE,
        "BCK 403 403 BCK 403 403 403 404 LGN LGN LGN LGN LGN LGN LGN LGN"),
    # --- Login and logout --------------------------------------------------------------------------------
    #    adm led dsc eng prd sec mem out ano wrt rdt att all rvk oth scr
    row("GET", "/login/", None,
        "HOM HOM HOM HOM HOM HOM HOM HOM 200 200 200 200 200 200 200 200"),
    row("POST", "/login/", BAD_LOGIN,
        "HOM HOM HOM HOM HOM HOM HOM HOM 200 200 200 200 200 200 200 200"),
    row("POST", "/logout/", None,
        "LGN LGN LGN LGN LGN LGN LGN LGN LGN LGN LGN LGN LGN LGN LGN LGN"),
    # --- Admin console (staff only) and the ops endpoints ------------------------------------------------
    #    adm led dsc eng prd sec mem out ano wrt rdt att all rvk oth scr
    row("GET", "/admin/", None,
        "200 ADM ADM ADM ADM ADM ADM ADM ADM ADM ADM ADM ADM ADM ADM ADM"),
    row("GET", "/healthz", None,
        "200 200 200 200 200 200 200 200 200 200 200 200 200 200 200 200"),
    row("GET", "/readyz", None,
        "200 200 200 200 200 200 200 200 200 200 200 200 200 200 200 200"),
    row("GET", "/metrics", None,
        "401 401 401 401 401 401 401 401 401 403 403 403 403 403 403 200"),
)
# fmt: on


@dataclass
class State:
    cast: Cast
    other: Project
    member_waiver: Waiver
    owner_waiver: Waiver
    admin_waiver: Waiver
    other_waiver: Waiver
    clients: dict[str, Client]

    def url(self, template: str) -> str:
        return template.format(
            p=self.cast.project.slug,
            other=self.other.slug,
            mw=self.member_waiver.pk,
            ow=self.owner_waiver.pk,
            aw=self.admin_waiver.pk,
            xw=self.other_waiver.pk,
        )


def _filled(body: dict[str, Any] | None, now: dt.datetime) -> dict[str, Any] | None:
    if body is None:
        return None
    later = now + dt.timedelta(days=30)
    values = {"in_30_days": later.isoformat(), "in_30_days_date": timezone.localdate(later).isoformat()}
    return {key: value.format(**values) if isinstance(value, str) else value for key, value in body.items()}


def _bearer(secret: str) -> Client:
    return Client(headers={"Authorization": f"Bearer {secret}"})


@pytest.fixture
def state(cast: Cast, settings: Any) -> State:
    settings.READINESS_METRICS_TOKEN = METRICS_TOKEN
    project = cast.project
    AttestationCriterionFactory(project=project, key="model_card", dimension="data_science")
    p99 = MetricCriterionFactory(project=project, key="p99_latency", dimension="engineering", threshold=300.0)
    MetricPointFactory(
        project=project, metric="latency_ms", value=100.0, ts=timezone.now() - dt.timedelta(hours=1)
    )
    MetricCriterionFactory(
        project=project,
        key="score_drift",
        dimension="engineering",
        kind="drift",
        severity="advisory",
        metric="score",
        aggregation="",
        op="",
        method="psi",
        threshold=0.2,
        window="24h",
        reference_start=timezone.now() - dt.timedelta(days=60),
        reference_end=timezone.now() - dt.timedelta(days=30),
    )
    AttestationCriterionFactory(project=project, key="pen_test", dimension="security")
    AttestationCriterionFactory(
        project=project, key="threat_model", dimension="security", not_applicable_reason="internal only"
    )
    member_waiver = WaiverFactory(criterion=p99, requested_by=cast.member)
    owner_waiver = WaiverFactory(criterion=p99, requested_by=cast.engineering)
    admin_waiver = WaiverFactory(criterion=p99, requested_by=cast.admin)
    other = ProjectFactory(slug="churn-model", team=TeamFactory(slug="retention"))
    rita = UserFactory(username="rita")
    other.team.members.add(rita)
    auc = MetricCriterionFactory(project=other, key="auc", dimension="data_science", metric="auc", op=">=")
    other_waiver = WaiverFactory(criterion=auc, requested_by=rita)

    def token(project: Project, name: str, scopes: list[str]) -> Client:
        _, secret = token_create(project=project, name=name, scopes=scopes)
        return _bearer(secret)

    clients: dict[str, Client] = {}
    for role, person in {
        "adm": cast.admin,
        "led": cast.leader,
        "dsc": cast.data_science,
        "eng": cast.engineering,
        "prd": cast.product,
        "sec": cast.security,
        "mem": cast.member,
        "out": cast.outsider,
    }.items():
        clients[role] = Client()
        clients[role].force_login(person)
    clients["ano"] = Client()
    clients["wrt"] = token(project, "push", ["metrics:write"])
    clients["rdt"] = token(project, "read", ["scorecard:read"])
    clients["att"] = token(project, "attest", ["attest"])
    all_scopes = ["metrics:write", "scorecard:read", "attest"]
    clients["all"] = token(project, "all", all_scopes)
    revoked, secret = token_create(project=project, name="revoked", scopes=all_scopes)
    token_revoke(token=revoked)
    clients["rvk"] = _bearer(secret)
    clients["oth"] = token(other, "other", all_scopes)
    clients["scr"] = _bearer(METRICS_TOKEN)
    assert set(clients) == set(ROLES)
    return State(cast, other, member_waiver, owner_waiver, admin_waiver, other_waiver, clients)


def _answer(response: Any) -> Expected:
    if response.status_code == 302:
        return Redirect(urlsplit(response["Location"]).path)
    return response.status_code


def _call(client: Client, method: str, url: str, body: dict[str, Any] | None) -> Any:
    call: Callable[..., Any] = getattr(client, method.lower())
    if url.startswith("/api/"):
        # API bodies are JSON (PRODUCT.md §3); a DELETE or a body-less POST sends none.
        return call(url, data=body, content_type="application/json") if body is not None else call(url)
    if method == "GET":
        return call(url)
    return call(url, data=body or {})


# Who may not read each project: a 2xx answer to them must not name it (its slug or its name).
HIDDEN_FROM = {
    ("fraud-detector", "Fraud detector"): {"out", "oth"},
    ("churn-model", "Churn model"): set(ROLES) - {"adm", "led", "oth"},
}


def _body(response: Any) -> str:
    raw = b"".join(response.streaming_content) if response.streaming else response.content
    return raw.decode(errors="replace")


def _leaks(role: str, body: str) -> list[str]:
    return [name for names, hidden in HIDDEN_FROM.items() if role in hidden for name in names if name in body]


@dataclass
class Tally:
    cells: int = 0
    wrong: int = 0


@pytest.fixture(scope="module")
def tally() -> Iterator[Tally]:
    """The matrix's figures for the run's summary (docs/reliability.md quotes them)."""
    started = time.perf_counter()
    counts = Tally()
    yield counts
    FIGURES.append(
        f"authorization matrix: {len(MATRIX)} rows x {len(ROLES)} roles = {counts.cells} cells checked, "
        f"{counts.wrong} wrong, in {time.perf_counter() - started:.1f} s"
    )


@pytest.mark.parametrize("entry", MATRIX, ids=str)
def test_every_role_gets_the_expected_answer(entry: Row, state: State, tally: Tally) -> None:
    url = state.url(entry.url)
    now = timezone.now()
    wrong: list[str] = []
    for role, expected in entry.cells.items():
        # A savepoint per cell: what one caller changes (a sign-off, a decided waiver, a logout) is
        # undone before the next, so each cell is answered on the state the table describes.
        with transaction.atomic():
            response = _call(state.clients[role], entry.method, url, _filled(entry.body, now))
            transaction.set_rollback(True)
        answer = _answer(response)
        tally.cells += 1
        if answer != expected:
            tally.wrong += 1
            detail = _body(response)[:200] if response.status_code != 302 else ""
            wrong.append(f"  {role} ({ROLES[role]}): expected {expected}, got {answer} {detail}")
        elif 200 <= response.status_code < 300 and (leaked := _leaks(role, _body(response))):
            # The right status is not enough: a list, a portfolio or an export must not name a
            # project the caller may not read.
            tally.wrong += 1
            wrong.append(f"  {role} ({ROLES[role]}): {answer}, but the body names {', '.join(leaked)}")
    assert not wrong, f"{entry}:\n" + "\n".join(wrong)


# --- The table covers every route ------------------------------------------------------------------


def _routes(patterns: list[Any], prefix: str = "", module: str = "") -> Iterator[tuple[str, str, URLPattern]]:
    """(full route, the urls module that declares it, pattern) for every URL pattern."""
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            name = getattr(pattern.urlconf_module, "__name__", "")
            yield from _routes(pattern.url_patterns, prefix + str(pattern.pattern), name or module)
        else:
            # As ResolverMatch.route joins them: a regex's leading ^ is dropped.
            yield prefix + str(pattern.pattern).removeprefix("^"), module, pattern


def _api_methods(pattern: URLPattern) -> set[str]:
    view_class = getattr(pattern.callback, "cls", None)
    if view_class is None:
        return set()
    return {
        method.upper() for method in ("get", "post", "put", "patch", "delete") if hasattr(view_class, method)
    }


OWN_MODULES = {"readiness.api.urls", "readiness.dashboard.urls", "readiness.urls"}


def test_every_route_has_a_row() -> None:
    covered: dict[str, set[str]] = {}
    for entry in MATRIX:
        path = urlsplit(
            entry.url.format(p="fraud-detector", other="churn-model", mw=1, ow=2, aw=3, xw=4)
        ).path
        if path in ENDPOINTS:
            covered.setdefault(path, set()).add(entry.method)
            continue
        covered.setdefault(resolve(path).route, set()).add(entry.method)
    missing: list[str] = []
    for route, module, pattern in _routes(get_resolver().url_patterns, module="readiness.urls"):
        if route.startswith("admin/"):
            continue  # Django's own console: its index row stands for it (staff only)
        assert module in OWN_MODULES, f"{route} comes from {module}: add its rows or list the module"
        if route not in covered:
            missing.append(f"{route} (no row)")
            continue
        for method in sorted(_api_methods(pattern) - covered[route]):
            missing.append(f"{method} {route} (no row for this method)")
    for path in ENDPOINTS:
        if path not in covered:
            missing.append(f"{path} (no row)")
    if "admin/" not in covered:
        missing.append("admin/ (no row)")
    assert not missing, "routes without a row in MATRIX:\n" + "\n".join(missing)


def test_the_table_has_a_cell_for_every_role() -> None:
    assert all(set(entry.cells) == set(ROLES) for entry in MATRIX)
    assert len({(entry.method, entry.url, str(entry.body)) for entry in MATRIX}) == len(MATRIX)
