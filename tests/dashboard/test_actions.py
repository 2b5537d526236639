"""The scorecard page's actions through Django's test client: who may take each one (the same rules as
the API, through the same services), outsiders 404, anonymous to the login page, GET refused, bad input
answered next to its field with nothing changed, htmx partial answers, and the no-JavaScript
POST/redirect/GET."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from readiness.audit.models import AuditEntry
from readiness.scoring.models import Attestation, Criterion, Scorecard, SignOff, Waiver
from readiness.scoring.services import scorecard_refresh, waiver_request
from tests.conftest import Cast
from tests.factories import AttestationCriterionFactory, MetricCriterionFactory, MetricPointFactory

PAGE = "/projects/fraud-detector/"
HTMX = {"HX-Request": "true"}


@pytest.fixture
def checks(cast: Cast) -> dict[str, Criterion]:
    """A security attestation never attested (missing: it fails its dimension), and an engineering
    metric criterion for the waiver requests."""
    criteria = {
        "threat_model": AttestationCriterionFactory(
            project=cast.project, key="threat_model", title="Threat model reviewed", dimension="security"
        ),
        "p99_latency": MetricCriterionFactory(
            project=cast.project, key="p99_latency", title="p99 latency", threshold=300
        ),
    }
    MetricPointFactory(project=cast.project, metric="latency_ms", value=412.0)
    scorecard_refresh(project=cast.project)
    return criteria


def pending_waiver(cast: Cast, checks: dict[str, Criterion], *, by: Any = None) -> Waiver:
    return waiver_request(
        criterion=checks["p99_latency"],
        by=by or cast.member,
        reason="Load test next sprint",
        expires_at=timezone.now() + dt.timedelta(days=14),
    )


@dataclass(frozen=True)
class Action:
    name: str
    url: Callable[[Cast, dict[str, Criterion]], str]
    data: dict[str, str]
    allowed: str  # who may take it: the cast member's attribute
    refused: str  # a reader of the project who may not


def in_days(days: int) -> str:
    return (timezone.localdate() + dt.timedelta(days=days)).isoformat()


ACTIONS = [
    Action(
        "attest",
        lambda c, k: f"{PAGE}criteria/threat_model/attest/",
        {"evidence_url": "https://wiki.example.com/threat-model", "note": ""},
        allowed="security",
        refused="engineering",
    ),
    Action(
        "not-applicable",
        lambda c, k: f"{PAGE}criteria/threat_model/not-applicable/",
        {"reason": "No user data"},
        allowed="security",
        refused="member",
    ),
    Action(
        "waiver-request",
        lambda c, k: f"{PAGE}criteria/p99_latency/waivers/",
        {"reason": "Load test next sprint", "expires_at": in_days(30)},
        allowed="member",
        refused="leader",
    ),
    Action(
        "waiver-approve",
        lambda c, k: f"{PAGE}waivers/{pending_waiver(c, k).pk}/approve/",
        {},
        allowed="engineering",
        refused="security",
    ),
    Action(
        "waiver-reject",
        lambda c, k: f"{PAGE}waivers/{pending_waiver(c, k).pk}/reject/",
        {},
        allowed="admin",
        refused="member",
    ),
    Action("signoff", lambda c, k: f"{PAGE}dimensions/product/signoff/", {"note": ""}, "product", "leader"),
]
IDS = [action.name for action in ACTIONS]


def snapshot() -> tuple[int, ...]:
    """What any action changes: nothing of it may move when an action is refused."""
    return (
        Attestation.objects.count(),
        Waiver.objects.exclude(status="pending").count(),
        SignOff.objects.count(),
        Criterion.objects.exclude(not_applicable_reason=None).count(),
        Scorecard.objects.count(),
        AuditEntry.objects.count(),
    )


# --- Access ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("action", ACTIONS, ids=IDS)
def test_anonymous_action_is_sent_to_the_login_page(
    cast: Cast, checks: dict[str, Criterion], client: Client, action: Action
) -> None:
    url = action.url(cast, checks)
    before = snapshot()
    response = client.post(url, action.data)
    assert response.status_code == 302
    assert response["Location"] == f"/login/?next={url}"
    assert snapshot() == before


@pytest.mark.parametrize("action", ACTIONS, ids=IDS)
def test_outsider_action_is_404(
    cast: Cast, checks: dict[str, Criterion], as_user: Callable, action: Action
) -> None:
    url = action.url(cast, checks)
    before = snapshot()
    assert as_user(cast.outsider).post(url, action.data).status_code == 404
    assert snapshot() == before


@pytest.mark.parametrize("action", ACTIONS, ids=IDS)
def test_actions_refuse_get(
    cast: Cast, checks: dict[str, Criterion], as_user: Callable, action: Action
) -> None:
    assert as_user(getattr(cast, action.allowed)).get(action.url(cast, checks)).status_code == 405


@pytest.mark.parametrize("action", ACTIONS, ids=IDS)
def test_a_reader_without_the_role_gets_403_and_nothing_changes(
    cast: Cast, checks: dict[str, Criterion], as_user: Callable, action: Action
) -> None:
    url = action.url(cast, checks)
    before = snapshot()
    response = as_user(getattr(cast, action.refused)).post(url, action.data)
    assert response.status_code == 403
    assert snapshot() == before
    pending = 1 if action.name in ("waiver-approve", "waiver-reject") else 0
    assert Waiver.objects.filter(status="pending").count() == pending


@pytest.mark.parametrize("action", ACTIONS, ids=IDS)
def test_the_allowed_person_acts_and_is_sent_back_to_the_page(
    cast: Cast, checks: dict[str, Criterion], as_user: Callable, action: Action
) -> None:
    client = as_user(getattr(cast, action.allowed))
    before = AuditEntry.objects.count()
    response = client.post(action.url(cast, checks), action.data)
    assert response.status_code == 302
    assert response["Location"].startswith(f"{PAGE}#")
    assert AuditEntry.objects.count() > before  # every action is audit-logged by its service
    page = client.get(PAGE)
    # The message of POST/redirect/GET, shown once on the page the redirect leads to.
    assert len(list(page.context["messages"])) == 1
    assert b'class="notice notice--success"' in page.content


def test_unknown_criterion_dimension_or_waiver_is_404(
    cast: Cast, checks: dict[str, Criterion], as_user: Callable
) -> None:
    client = as_user(cast.admin)
    assert client.post(f"{PAGE}criteria/no_such_check/attest/", {}).status_code == 404
    assert client.post(f"{PAGE}dimensions/finance/signoff/", {}).status_code == 404
    assert client.post(f"{PAGE}waivers/999999/approve/", {}).status_code == 404


def test_a_waiver_of_another_project_is_404_under_this_one(
    cast: Cast, checks: dict[str, Criterion], as_user: Callable
) -> None:
    other = MetricCriterionFactory(key="other_latency")
    waiver = waiver_request(
        criterion=other, by=cast.admin, reason="elsewhere", expires_at=timezone.now() + dt.timedelta(days=3)
    )
    assert as_user(cast.admin).post(f"{PAGE}waivers/{waiver.pk}/approve/").status_code == 404
    assert Waiver.objects.get(pk=waiver.pk).status == "pending"


def test_nobody_approves_their_own_waiver(
    cast: Cast, checks: dict[str, Criterion], as_user: Callable
) -> None:
    waiver = pending_waiver(cast, checks, by=cast.engineering)
    response = as_user(cast.engineering).post(f"{PAGE}waivers/{waiver.pk}/approve/")
    assert response.status_code == 403
    assert Waiver.objects.get(pk=waiver.pk).status == "pending"


# --- What each action does ------------------------------------------------------------------------


def test_attesting_turns_the_criterion_to_pass(
    cast: Cast, checks: dict[str, Criterion], as_user: Callable
) -> None:
    client = as_user(cast.security)
    response = client.post(
        f"{PAGE}criteria/threat_model/attest/",
        {"evidence_url": "https://wiki.example.com/tm", "note": "Reviewed with the red team"},
    )
    assert response["Location"] == f"{PAGE}#security-threat_model"
    attestation = Attestation.objects.get(criterion=checks["threat_model"])
    assert (attestation.attested_by, attestation.evidence_url) == (
        cast.security,
        "https://wiki.example.com/tm",
    )
    assert attestation.automated is False  # a person, not a pipeline
    page = client.get(PAGE)
    assert "Attested “Threat model reviewed”." in page.content.decode()
    security = next(c for c in page.context["page"].columns if c.key == "security")
    assert security.status == "pass"


def test_marking_not_applicable_and_undoing_it(
    cast: Cast, checks: dict[str, Criterion], as_user: Callable
) -> None:
    client = as_user(cast.security)
    client.post(f"{PAGE}criteria/threat_model/not-applicable/", {"reason": "No user data is processed"})
    assert Criterion.objects.get(key="threat_model").not_applicable_reason == "No user data is processed"
    page = client.get(PAGE)
    line = next(
        line for c in page.context["page"].columns for line in c.criteria if line.key == "threat_model"
    )
    assert line.status == "not_applicable"
    assert b"It applies again" in page.content
    client.post(f"{PAGE}criteria/threat_model/applicable/")
    assert Criterion.objects.get(key="threat_model").not_applicable_reason is None


def test_requesting_a_waiver_leaves_it_pending_for_the_responsible_person(
    cast: Cast, checks: dict[str, Criterion], as_user: Callable
) -> None:
    as_user(cast.member).post(
        f"{PAGE}criteria/p99_latency/waivers/", {"reason": "Load test next sprint", "expires_at": in_days(20)}
    )
    waiver = Waiver.objects.get()
    assert (waiver.status, waiver.requested_by, waiver.reason) == (
        "pending",
        cast.member,
        "Load test next sprint",
    )
    assert waiver.expires_at.date() == timezone.localdate() + dt.timedelta(days=20)
    # The responsible person sees it with the buttons; the requester sees it without.
    assert b"Approve waiver" in as_user(cast.engineering).get(PAGE).content
    mine = as_user(cast.member).get(PAGE).content
    assert b"Load test next sprint" in mine and b"Approve waiver" not in mine


def test_approving_a_waiver_waives_the_criterion(
    cast: Cast, checks: dict[str, Criterion], as_user: Callable
) -> None:
    waiver = pending_waiver(cast, checks)
    client = as_user(cast.engineering)
    client.post(f"{PAGE}waivers/{waiver.pk}/approve/")
    waiver.refresh_from_db()
    assert (waiver.status, waiver.approved_by) == ("approved", cast.engineering)
    line = next(
        line
        for c in client.get(PAGE).context["page"].columns
        for line in c.criteria
        if line.key == "p99_latency"
    )
    assert line.status == "waived"


def test_deciding_a_decided_waiver_is_a_409_with_its_reason(
    cast: Cast, checks: dict[str, Criterion], as_user: Callable
) -> None:
    waiver = pending_waiver(cast, checks)
    client = as_user(cast.engineering)
    client.post(f"{PAGE}waivers/{waiver.pk}/reject/")
    before = snapshot()
    response = client.post(f"{PAGE}waivers/{waiver.pk}/approve/")
    assert response.status_code == 409
    assert "This waiver is already rejected." in response.content.decode()
    assert snapshot() == before


def test_signing_off_a_passing_dimension(cast: Cast, checks: dict[str, Criterion], as_user: Callable) -> None:
    client = as_user(cast.product)
    assert b"Sign off Product" in client.get(PAGE).content
    response = client.post(f"{PAGE}dimensions/product/signoff/", {"note": "Reviewed in the demo"})
    assert response["Location"] == f"{PAGE}#product"
    signoff = SignOff.objects.get()
    assert (signoff.dimension, signoff.signed_by, signoff.note) == (
        "product",
        cast.product,
        "Reviewed in the demo",
    )
    product = next(c for c in client.get(PAGE).context["page"].columns if c.key == "product")
    assert product.signoff_state == "valid"


def test_signing_off_a_failing_dimension_is_refused(
    cast: Cast, checks: dict[str, Criterion], as_user: Callable
) -> None:
    client = as_user(cast.security)
    page = client.get(PAGE).content.decode()
    # No button where nothing could be signed off; the reason instead.
    assert "Sign off Security" not in page
    assert "Security can be signed off once none of its blockers fails." in page
    before = snapshot()
    response = client.post(f"{PAGE}dimensions/security/signoff/", {"note": ""})
    assert response.status_code == 409
    assert "Security is failing; nobody signs off what is failing." in response.content.decode()
    assert snapshot() == before


# --- Bad input: a clear message next to the field, nothing changed --------------------------------


def field_error(content: str, field_id: str) -> str:
    """The error list Django renders for one field (and links to it with aria-describedby)."""
    start = content.index(f'id="{field_id}_error"')
    return content[start : content.index("</ul>", start)]


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"evidence_url": "not a link"}, "evidence_url", "Must be an http(s) URL."),
        ({"evidence_url": "ftp://files.example.com/tm"}, "evidence_url", "Must be an http(s) URL."),
        ({"evidence_url": "https://x.example.com/" + "a" * 500}, "evidence_url", "at most 500 characters"),
        ({"evidence_url": "", "note": "n" * 5001}, "note", "at most 5000 characters"),
    ],
)
def test_a_bad_attestation_says_why_next_to_the_field(
    cast: Cast, checks: dict[str, Criterion], as_user: Callable, data: dict, field: str, message: str
) -> None:
    before = snapshot()
    response = as_user(cast.security).post(f"{PAGE}criteria/threat_model/attest/", data)
    assert response.status_code == 422
    content = response.content.decode()
    assert message in field_error(content, f"attest-threat_model-{field}")
    assert f'aria-describedby="attest-threat_model-{field}_error"' in content
    # The refused form comes back open, with what was typed, on the whole page (no JavaScript).
    assert "<html" in content and "Nothing was changed" in content
    assert snapshot() == before


def test_evidence_is_required_where_the_criterion_says_so(
    cast: Cast, checks: dict[str, Criterion], as_user: Callable
) -> None:
    Criterion.objects.filter(key="threat_model").update(evidence_required=True)
    before = snapshot()
    response = as_user(cast.security).post(f"{PAGE}criteria/threat_model/attest/", {"evidence_url": ""})
    assert response.status_code == 422
    assert "Threat_model requires an evidence link." in field_error(
        response.content.decode(), "attest-threat_model-evidence_url"
    )
    assert snapshot() == before


def test_only_attestation_criteria_are_attested(
    cast: Cast, checks: dict[str, Criterion], as_user: Callable
) -> None:
    before = snapshot()
    response = as_user(cast.engineering).post(f"{PAGE}criteria/p99_latency/attest/", {"evidence_url": ""})
    assert response.status_code == 422
    assert "P99_latency is a metric criterion, not an attestation." in response.content.decode()
    assert snapshot() == before


def test_not_applicable_needs_a_reason(cast: Cast, checks: dict[str, Criterion], as_user: Callable) -> None:
    before = snapshot()
    response = as_user(cast.security).post(f"{PAGE}criteria/threat_model/not-applicable/", {"reason": "   "})
    assert response.status_code == 422
    assert "This field is required." in field_error(
        response.content.decode(), "not_applicable-threat_model-reason"
    )
    assert snapshot() == before


NOW = dt.datetime(2026, 11, 22, 10, 30, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("expires", "message"),
    [
        ("2027-02-21", "A waiver lasts at most 90 days."),  # 91 days away
        ("2026-11-22", "Must be in the future."),  # today: the waiver would end now
        ("2026-11-31", "Enter a valid date."),
    ],
)
def test_a_waiver_beyond_90_days_or_in_the_past_is_refused(
    cast: Cast, checks: dict[str, Criterion], as_user: Callable, expires: str, message: str
) -> None:
    with time_machine.travel(NOW, tick=False):
        response = as_user(cast.member).post(
            f"{PAGE}criteria/p99_latency/waivers/", {"reason": "Load test", "expires_at": expires}
        )
    assert response.status_code == 422
    assert message in field_error(response.content.decode(), "waiver-p99_latency-expires_at")
    assert not Waiver.objects.exists()


def test_a_waiver_of_exactly_90_days_is_accepted(
    cast: Cast, checks: dict[str, Criterion], as_user: Callable
) -> None:
    with time_machine.travel(NOW, tick=False):
        response = as_user(cast.member).post(
            f"{PAGE}criteria/p99_latency/waivers/", {"reason": "Load test", "expires_at": "2027-02-20"}
        )
    assert response.status_code == 302
    assert Waiver.objects.get().expires_at == NOW + dt.timedelta(days=90)


def test_a_waiver_needs_a_reason(cast: Cast, checks: dict[str, Criterion], as_user: Callable) -> None:
    response = as_user(cast.member).post(f"{PAGE}criteria/p99_latency/waivers/", {"expires_at": in_days(5)})
    assert response.status_code == 422
    assert "This field is required." in field_error(response.content.decode(), "waiver-p99_latency-reason")
    assert not Waiver.objects.exists()


# --- htmx: the parts of the page, without a reload -------------------------------------------------


def test_an_htmx_attestation_answers_the_column_banner_and_message(
    cast: Cast, checks: dict[str, Criterion], as_user: Callable
) -> None:
    response = as_user(cast.security).post(
        f"{PAGE}criteria/threat_model/attest/", {"evidence_url": "https://wiki.example.com/tm"}, headers=HTMX
    )
    assert response.status_code == 200
    content = response.content.decode()
    assert "<html" not in content
    # The affected column first (the form's hx-target), then the parts swapped out of band.
    assert content.lstrip().startswith('<section class="dimension dimension--pass" id="security"')
    banner = '<section id="banner" class="banner banner--no_go" aria-labelledby="decision-heading"'
    assert f'{banner} hx-swap-oob="true">' in content
    assert '<div id="flash" class="flash" role="status" tabindex="-1" hx-swap-oob="true">' in content
    assert (
        '<section class="panel charts" id="decisions" aria-labelledby="decisions-heading" hx-swap-oob="true">'
        in (content)
    )
    assert "Attested “Threat model reviewed”." in content
    # The banner no longer lists the attested criterion: the service re-evaluated the project.
    assert "threat_model" not in {blocker.criterion for blocker in response.context["page"].blockers}


def test_an_htmx_action_reads_and_draws_no_chart(
    cast: Cast, checks: dict[str, Criterion], as_user: Callable
) -> None:
    client = as_user(cast.security)
    response = client.post(
        f"{PAGE}criteria/threat_model/attest/", {"evidence_url": "https://wiki.example.com/tm"}, headers=HTMX
    )
    assert response.status_code == 200
    # The answer swaps the column, the banner, the message and the decision history: the charts are
    # neither read (no series queried) nor drawn.
    assert response.context["charts"] is None
    content = response.content.decode()
    assert 'id="chart-data"' not in content and 'id="chart-p99_latency"' not in content
    assert 'id="timeline-data"' in content
    # The page itself still draws every chart.
    page = client.get(PAGE)
    assert page.context["charts"].metrics and 'id="chart-p99_latency"' in page.content.decode()


def test_a_refused_htmx_action_swaps_the_column_with_its_message(
    cast: Cast, checks: dict[str, Criterion], as_user: Callable
) -> None:
    before = snapshot()
    response = as_user(cast.security).post(
        f"{PAGE}criteria/threat_model/attest/", {"evidence_url": "nope"}, headers=HTMX
    )
    # 200 for htmx (it swaps only 2xx); the content says what went wrong.
    assert response.status_code == 200
    content = response.content.decode()
    assert content.lstrip().startswith('<section class="dimension dimension--fail" id="security"')
    assert "Must be an http(s) URL." in field_error(content, "attest-threat_model-evidence_url")
    assert '<details class="actions" open>' in content
    assert 'value="nope"' in content  # what was typed is kept
    assert snapshot() == before


def test_an_htmx_signoff_changes_the_banner(cast: Cast, as_user: Callable) -> None:
    # A project without criteria passes everywhere; three sign-offs given, the fourth turns it go.
    client = as_user(cast.admin)
    for dim in ("data_science", "engineering", "security"):
        client.post(f"{PAGE}dimensions/{dim}/signoff/", {"note": ""})
    assert client.get(PAGE).context["page"].decision == "no_go"
    response = client.post(f"{PAGE}dimensions/product/signoff/", {"note": ""}, headers=HTMX)
    content = response.content.decode()
    assert '<section id="banner" class="banner banner--go"' in content
    assert "Every dimension passes and is signed off." in content


def test_csrf_is_enforced_on_htmx_posts_and_the_page_provides_the_token(
    cast: Cast, checks: dict[str, Criterion]
) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(cast.security)
    url = f"{PAGE}criteria/threat_model/attest/"
    data = {"evidence_url": "https://wiki.example.com/tm"}
    before = snapshot()
    assert client.post(url, data, headers=HTMX).status_code == 403
    assert snapshot() == before
    # htmx sends the token the page puts on <body hx-headers='{"X-CSRFToken": ...}'>: a static JSON
    # attribute, no script.
    page = client.get(PAGE).content.decode()
    headers = page.split("<body hx-headers='", 1)[1].split("'", 1)[0]
    token = json.loads(headers)["X-CSRFToken"]
    response = client.post(url, data, headers={**HTMX, "X-CSRFToken": token})
    assert response.status_code == 200
    assert Attestation.objects.filter(criterion=checks["threat_model"]).exists()


# --- Who sees which controls ---------------------------------------------------------------------


def forms_in(content: bytes) -> set[str]:
    text = content.decode()
    kinds = ("attest", "not-applicable", "applicable", "waivers", "signoff", "approve", "reject")
    return {kind for kind in kinds if f'/{kind}/"' in text}


def test_leadership_sees_no_action_controls(
    cast: Cast, checks: dict[str, Criterion], as_user: Callable
) -> None:
    pending_waiver(cast, checks)
    content = as_user(cast.leader).get(PAGE).content
    assert forms_in(content) == set()
    assert b'class="actions"' not in content


def test_a_team_member_may_only_request_waivers(
    cast: Cast, checks: dict[str, Criterion], as_user: Callable
) -> None:
    pending_waiver(cast, checks, by=cast.admin)
    assert forms_in(as_user(cast.member).get(PAGE).content) == {"waivers"}


def test_the_responsible_person_acts_in_their_own_dimension_only(
    cast: Cast, checks: dict[str, Criterion], as_user: Callable
) -> None:
    content = as_user(cast.security).get(PAGE).content.decode()
    assert f'action="{PAGE}criteria/threat_model/attest/"' in content
    assert f'action="{PAGE}criteria/p99_latency/not-applicable/"' not in content
    assert f'action="{PAGE}dimensions/engineering/signoff/"' not in content
    engineering = as_user(cast.engineering).get(PAGE).content.decode()
    assert f'action="{PAGE}criteria/p99_latency/not-applicable/"' in engineering
    # A metric is measured, never attested.
    assert f'action="{PAGE}criteria/p99_latency/attest/"' not in engineering


def test_an_admin_sees_every_control(cast: Cast, checks: dict[str, Criterion], as_user: Callable) -> None:
    pending_waiver(cast, checks)
    assert forms_in(as_user(cast.admin).get(PAGE).content) == {
        "attest",
        "not-applicable",
        "waivers",
        "signoff",
        "approve",
        "reject",
    }


def test_form_ids_are_unique_on_the_page(cast: Cast, checks: dict[str, Criterion], as_user: Callable) -> None:
    content = as_user(cast.admin).get(PAGE).content.decode()
    ids = re.findall(r'\sid="([^"]+)"', content)
    assert len(ids) == len(set(ids))
    # Every visible field has its label.
    for field_id in re.findall(r'<(?:input|textarea)[^>]*\sid="([^"]+)"', content):
        assert f'for="{field_id}"' in content, field_id
