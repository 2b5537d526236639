"""What leaves Readiness: the webhook JSON a real local HTTP server receives, the email in Django's
locmem outbox and through a real SMTP server (aiosmtpd), and how each transport's failures are told
apart (transient: retried; permanent: the channel is disabled)."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import socket
from email.message import EmailMessage

import pytest
import time_machine
from django.core import mail
from django.test import override_settings

from readiness.alerts.models import Channel, Delivery
from readiness.alerts.sending import delivery_send
from readiness.alerts.services import expiring_scan
from readiness.alerts.transports import (
    EmailTransport,
    Message,
    PermanentError,
    TransientError,
    WebhookTransport,
)
from readiness.projects.models import Project
from readiness.scoring.services import scorecard_refresh
from tests.alerts.conftest import T0, MailServer, Receiver, go_then_no_go, only_delivery, webhook
from tests.alerts.conftest import email as email_channel
from tests.conftest import Cast
from tests.factories import AttestationCriterionFactory, AttestationFactory

pytestmark = pytest.mark.django_db
BASE_URL = "https://readiness.example.com"
LINK = f"{BASE_URL}/projects/fraud-detector/"


def sent_through(channel: Channel) -> Delivery:
    delivery = only_delivery(channel)
    assert delivery_send(delivery_id=delivery.pk) == "sent"
    return delivery


# --- Webhook ---------------------------------------------------------------------------------------


@override_settings(READINESS_BASE_URL=BASE_URL + "/")
def test_webhook_payload_has_project_decisions_blockers_and_link(
    project: Project, receiver: Receiver
) -> None:
    channel = webhook(project, receiver.url())
    go_then_no_go(project)
    delivery = sent_through(channel)
    [request] = receiver.received
    assert request.path == "/hooks/readiness"
    assert request.headers["Content-Type"] == "application/json"
    body = request.body
    assert body["project"] == {"slug": "fraud-detector", "name": "Fraud detector", "stage": "prototype"}
    assert body["decision"] == {"old": "go", "new": "no_go"}
    assert body["blockers"] == [
        {
            "dimension": "data_science",
            "criterion": "model_quality",
            "status": "fail",
            "reason": "latest accuracy over 24h is 0.5, below 0.9",
            "owner": "alice",
        }
    ]
    assert body["link"] == LINK
    assert body["delivery_id"] == delivery.pk and body["digest"] is False
    assert [event["kind"] for event in body["events"]] == ["decision_changed", "criterion_regressed"]
    assert body["events"][1]["owner"] == "alice"
    # Slack-compatible: a text field with the headline, each event and blocker, and the link.
    assert body["text"].splitlines() == [
        "*Fraud detector is now NO-GO (was GO)*",
        "• decision changed from GO to NO-GO",
        "• data_science/model_quality regressed to fail (was pass): "
        "latest accuracy over 24h is 0.5, below 0.9",
        "Blockers (1):",
        "• data_science/model_quality: fail: latest accuracy over 24h is 0.5, below 0.9 (owner: alice)",
        f"<{LINK}|Open the scorecard>",
    ]


def message(payload: dict[str, object] | None = None) -> Message:
    return Message(
        subject="s",
        text="t",
        html="<p>h</p>",
        payload=payload or {"text": "hi"},
        idempotency_key="k-1",
        message_id="<k-1@example.com>",
    )


def test_webhook_transport_accepts_any_2xx(receiver: Receiver) -> None:
    receiver.status = 204
    WebhookTransport(receiver.url()).send(message())
    assert receiver.received[0].body == {"text": "hi"}


def test_webhook_that_does_not_answer_in_time_is_transient(receiver: Receiver) -> None:
    receiver.delay = 2.0
    with pytest.raises(TransientError, match=r"no answer from .* within 0.5 s"):
        WebhookTransport(receiver.url(), timeout=0.5).send(message())


@pytest.mark.parametrize("url", ["ftp://hooks.example.com/x", "file:///etc/passwd", "gopher://x/"])
def test_webhook_to_a_non_http_url_is_permanent_without_connecting(url: str) -> None:
    with pytest.raises(PermanentError, match="is not http"):
        WebhookTransport(url).send(message())


@pytest.mark.parametrize(
    "url",
    ["http://169.254.169.254/latest/meta-data/", "http://[fe80::1]/hook", "http://[::ffff:169.254.1.1]/"],
)
def test_webhook_to_a_link_local_or_metadata_address_is_refused_without_connecting(url: str) -> None:
    with pytest.raises(PermanentError, match="in the denied network"):
        WebhookTransport(url).send(message())


def test_webhook_deny_list_is_judged_on_the_resolved_address(receiver: Receiver) -> None:
    # "localhost" is a name, not an address: it is refused once the setting denies what it resolves to.
    url = receiver.url().replace("127.0.0.1", "localhost")
    WebhookTransport(url).send(message())
    assert len(receiver.received) == 1
    deny_loopback = override_settings(
        READINESS_PROBE_DENY_NETWORKS=["169.254.0.0/16", "127.0.0.0/8", "::1/128"]
    )
    with (
        deny_loopback,
        pytest.raises(PermanentError, match=r"localhost resolves to .*, in the denied network"),
    ):
        WebhookTransport(url).send(message())
    assert len(receiver.received) == 1  # the refused one never connected


def test_webhook_to_a_host_that_does_not_resolve_is_transient() -> None:
    with pytest.raises(TransientError, match="cannot resolve"):
        WebhookTransport("http://hooks.invalid/x").send(message())


def test_webhook_redirect_is_permanent_and_not_followed(receiver: Receiver) -> None:
    receiver.status = 308
    with pytest.raises(PermanentError, match="answered HTTP 308"):
        WebhookTransport(receiver.url()).send(message())
    assert len(receiver.received) == 1


# --- Email -----------------------------------------------------------------------------------------------


@override_settings(READINESS_BASE_URL=BASE_URL, DEFAULT_FROM_EMAIL="readiness@example.com")
def test_email_has_plain_text_and_html_with_decisions_blockers_and_link(project: Project) -> None:
    channel = email_channel(project, "ml-ops@example.com", "alice@example.com")
    go_then_no_go(project)
    delivery = sent_through(channel)
    [sent] = mail.outbox
    assert sent.subject == "[Readiness] Fraud detector is now NO-GO (was GO)"
    assert sent.to == ["ml-ops@example.com", "alice@example.com"]
    assert sent.from_email == "readiness@example.com"
    assert sent.extra_headers["X-Readiness-Delivery"] == f"readiness-delivery-{delivery.pk}"
    text = sent.body
    assert "Project: Fraud detector (fraud-detector), stage prototype" in text
    assert "Decision: NO-GO (was GO)" in text
    assert (
        "- data_science/model_quality: fail: latest accuracy over 24h is 0.5, below 0.9 (owner: alice)"
        in text
    )
    assert f"Scorecard: {LINK}" in text
    [(html, mimetype)] = sent.alternatives
    assert mimetype == "text/html"
    assert f'<a href="{LINK}">Open the scorecard</a>' in html
    assert "NO-GO</strong>" in html and "(was GO)" in html
    assert '<td style="padding: 2px 8px 2px 0;">model_quality</td>' in html
    assert "alice" in html


def test_email_html_escapes_what_people_typed(project: Project) -> None:
    Project.objects.filter(pk=project.pk).update(name="Fraud <b>detector</b> & co")
    channel = email_channel(project)
    project.refresh_from_db()
    go_then_no_go(project)
    sent_through(channel)
    [(html, _)] = mail.outbox[0].alternatives
    assert "Fraud &lt;b&gt;detector&lt;/b&gt; &amp; co" in html
    assert "Fraud <b>detector</b> & co" in mail.outbox[0].body  # plain text stays as typed


def smtp_settings(server: MailServer) -> override_settings:
    return override_settings(
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=server.port,
        EMAIL_USE_TLS=False,
        EMAIL_HOST_USER="",
        EMAIL_HOST_PASSWORD="",
        READINESS_BASE_URL=BASE_URL,
    )


def test_email_through_a_real_smtp_server_has_both_parts(project: Project, smtp_server: MailServer) -> None:
    channel = email_channel(project, "ml-ops@example.com")
    go_then_no_go(project)
    with smtp_settings(smtp_server):
        sent_through(channel)
    [envelope] = smtp_server.messages
    assert envelope.rcpt_tos == ["ml-ops@example.com"]
    parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    assert parsed["Subject"] == "[Readiness] Fraud detector is now NO-GO (was GO)"
    assert parsed.get_content_type() == "multipart/alternative"
    plain = parsed.get_body(preferencelist=("plain",))
    html = parsed.get_body(preferencelist=("html",))
    assert plain is not None and html is not None
    assert "Decision: NO-GO (was GO)" in plain.get_content()
    assert "(owner: alice)" in plain.get_content()
    assert LINK in plain.get_content()
    assert f'<a href="{LINK}">' in html.get_content()


def test_recipient_refused_by_the_smtp_server_is_permanent(project: Project, smtp_server: MailServer) -> None:
    smtp_server.refuse_recipients = "550 5.1.1 no such mailbox"
    channel = email_channel(project, "gone@example.com")
    go_then_no_go(project)
    with smtp_settings(smtp_server):
        assert delivery_send(delivery_id=only_delivery(channel).pk) == "failed"
    channel.refresh_from_db()
    assert not channel.enabled
    assert (
        channel.last_error
        == "the mail server refused every recipient: gone@example.com: 550 5.1.1 no such mailbox"
    )


def test_recipient_deferred_by_the_smtp_server_is_transient(smtp_server: MailServer) -> None:
    smtp_server.refuse_recipients = "451 4.7.1 greylisted, try again later"
    with smtp_settings(smtp_server), pytest.raises(TransientError, match="deferred recipients"):
        EmailTransport(["ops@example.com"]).send(message())


def test_smtp_server_not_listening_is_transient(refused_port: int) -> None:
    settings = override_settings(
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=refused_port,
    )
    with settings, pytest.raises(TransientError, match="could not send mail"):
        EmailTransport(["ops@example.com"]).send(message())


@pytest.fixture
def refused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_expiry_message_names_each_expiry_and_the_current_decision(project: Project, cast: Cast) -> None:
    channel = email_channel(project)
    criterion = AttestationCriterionFactory(
        project=project, key="model_card", dimension="data_science", valid_for_days=30
    )
    AttestationFactory(criterion=criterion, attested_by=cast.data_science, attested_at=T0)
    scorecard_refresh(project=project, now=T0)  # go: the model card is attested
    other = AttestationCriterionFactory(project=project, key="threat_model", valid_for_days=10)
    AttestationFactory(criterion=other, attested_by=cast.security, attested_at=T0 + dt.timedelta(days=20))
    with time_machine.travel(T0 + dt.timedelta(days=26), tick=False):
        assert expiring_scan() == 2
        sent_through(channel)
    [sent] = mail.outbox
    assert sent.subject == (
        "[Readiness] Fraud detector (GO): the attestation of data_science/model_card by alice expires on "
        "2026-12-22T10:00+00:00 (in 4 days); re-attest before then (and 1 more)"
    )
    assert "- the attestation of security/threat_model by dave expires on" in sent.body
    assert "(owner: dave)" in sent.body
