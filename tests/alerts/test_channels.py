"""Channels refuse bad input wherever it comes from (model, admin console, checks-as-code import) with
a clear error and nothing saved; the console shows channels with their state and last error, and the
deliveries with every attempt, read-only."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from readiness.alerts.models import Channel, Delivery, Event
from readiness.alerts.sending import delivery_send
from readiness.checks_as_code.apply import checks_import
from readiness.checks_as_code.checkers import ChecksInvalid
from readiness.projects.models import Project
from tests.alerts.conftest import Receiver, go_then_no_go, only_delivery, webhook
from tests.conftest import Cast

pytestmark = pytest.mark.django_db


def clean_errors(**fields: Any) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as caught:
        Channel(**fields).full_clean(exclude=["project"])
    return caught.value.message_dict


@pytest.mark.parametrize(
    "url", ["ftp://hooks.example.com/x", "file:///etc/passwd", "javascript:alert(1)", "hooks.example.com"]
)
def test_webhook_url_must_be_http_or_https(url: str) -> None:
    assert "Enter an http:// or https:// URL." in clean_errors(kind="webhook", url=url)["url"]


def test_webhook_needs_a_url() -> None:
    assert clean_errors(kind="webhook", url="")["url"] == ["A webhook channel needs an http(s) URL."]


def test_email_channel_needs_a_recipient() -> None:
    assert clean_errors(kind="email", to=[])["to"] == ["An email channel needs at least one recipient."]


def test_email_recipients_must_be_addresses() -> None:
    assert clean_errors(kind="email", to=["ops@example.com", "ops"])["to"] == [
        "'ops' is not an email address."
    ]


def test_each_kind_refuses_the_other_kinds_field() -> None:
    assert clean_errors(kind="email", to=["a@example.com"], url="https://x.example.com")["url"] == [
        "Not used by email channels."
    ]
    assert clean_errors(kind="webhook", url="https://x.example.com", to=["a@example.com"])["to"] == [
        "Not used by webhook channels."
    ]


@pytest.mark.parametrize(
    ("kind", "url", "to"), [("webhook", "https://hooks.example.com/T0", []), ("email", "", ["a@example.com"])]
)
def test_valid_channels_pass(kind: str, url: str, to: list[str]) -> None:
    Channel(kind=kind, url=url, to=to).full_clean(exclude=["project"])


# --- The admin console ---------------------------------------------------------------------------


@pytest.fixture
def console(client: Client, cast: Cast) -> Client:
    client.force_login(cast.admin)
    return client


def add_channel(console: Client, project: Project, **fields: str) -> Any:
    data = {"project": str(project.pk), "kind": "webhook", "url": "", "to": "", "enabled": "on"} | fields
    return console.post(reverse("admin:alerts_channel_add"), data)


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"url": "ftp://hooks.example.com/x"}, "url", "Enter an http:// or https:// URL."),
        ({"url": ""}, "url", "A webhook channel needs an http(s) URL."),
        ({"kind": "email", "to": ""}, "to", "An email channel needs at least one recipient."),
        ({"kind": "email", "to": "ops@example.com, nobody"}, "to", "'nobody' is not an email address."),
    ],
)
def test_admin_refuses_a_bad_channel_and_saves_nothing(
    console: Client, cast: Cast, fields: dict[str, str], field: str, message: str
) -> None:
    response = add_channel(console, cast.project, **fields)
    assert response.status_code == 200  # the form again, with its errors
    assert message in response.context["adminform"].form.errors[field]
    assert not Channel.objects.exists()


def test_admin_saves_a_good_digest_channel(console: Client, cast: Cast) -> None:
    response = add_channel(
        console, cast.project, kind="email", to="a@example.com, b@example.com", digest="on"
    )
    assert response.status_code == 302
    channel = Channel.objects.get()
    assert (channel.to, channel.digest, channel.enabled) == (["a@example.com", "b@example.com"], True, True)


def test_channel_list_shows_enabled_and_last_error(
    console: Client, project: Project, receiver: Receiver
) -> None:
    receiver.status = 410
    channel = webhook(project, receiver.url())
    go_then_no_go(project)
    delivery_send(delivery_id=only_delivery(channel).pk)
    response = console.get(reverse("admin:alerts_channel_changelist"))
    [row] = response.context["cl"].result_list
    assert (row.enabled, row.last_error.split(":")[0]) == (False, "http")
    page = response.content.decode()
    assert "answered HTTP 410" in page
    assert 'alt="False"' in page  # the disabled icon in the enabled column


def test_deliveries_are_visible_with_their_attempts_and_read_only(
    console: Client, project: Project, receiver: Receiver
) -> None:
    receiver.script = [503]
    channel = webhook(project, receiver.url())
    go_then_no_go(project)
    delivery = only_delivery(channel)
    delivery_send(delivery_id=delivery.pk, now=dt.datetime.now(dt.UTC))
    listing = console.get(reverse("admin:alerts_delivery_changelist"))
    assert listing.status_code == 200
    assert [d.pk for d in listing.context["cl"].result_list] == [delivery.pk]
    page = console.get(reverse("admin:alerts_delivery_change", args=[delivery.pk]))
    assert page.status_code == 200
    content = page.content.decode()
    assert "transient" in content and "answered HTTP 503" in content
    assert "decision_changed: decision changed from GO to NO-GO" in content
    assert console.post(reverse("admin:alerts_delivery_change", args=[delivery.pk]), {}).status_code == 403
    assert console.get(reverse("admin:alerts_delivery_add")).status_code == 403
    assert (
        console.post(reverse("admin:alerts_delivery_delete", args=[delivery.pk]), {"post": "yes"}).status_code
        == 403
    )
    assert Delivery.objects.filter(pk=delivery.pk).exists()


def test_events_are_visible_and_read_only(console: Client, project: Project) -> None:
    go_then_no_go(project)
    event = Event.objects.filter(project=project).first()
    assert event is not None
    assert console.get(reverse("admin:alerts_event_changelist")).status_code == 200
    assert console.get(reverse("admin:alerts_event_change", args=[event.pk])).status_code == 200
    assert console.get(reverse("admin:alerts_event_add")).status_code == 403
    assert console.post(reverse("admin:alerts_event_change", args=[event.pk]), {}).status_code == 403


def test_people_other_than_admins_do_not_see_deliveries(client: Client, cast: Cast) -> None:
    client.force_login(cast.engineering)
    response = client.get(reverse("admin:alerts_delivery_changelist"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


# --- Checks as code ----------------------------------------------------------------------------------


def document(channel: dict[str, Any]) -> dict[str, Any]:
    return {
        "teams": [{"slug": "fraud", "name": "Fraud", "members": []}],
        "projects": [{"slug": "hooked", "name": "Hooked", "team": "fraud", "channels": [channel]}],
    }


@pytest.mark.parametrize(
    ("channel", "path", "message"),
    [
        (
            {"kind": "webhook", "url": "ftp://hooks.example.com/x"},
            "projects[0].channels[0].url",
            "'ftp://hooks.example.com/x' is not a valid http:// or https:// URL",
        ),
        ({"kind": "email", "to": []}, "projects[0].channels[0].to", "needs at least one email address"),
    ],
)
def test_import_refuses_a_bad_channel_and_applies_nothing(
    cast: Cast, channel: dict[str, Any], path: str, message: str
) -> None:
    with pytest.raises(ChecksInvalid) as caught:
        checks_import(document=document(channel), dry_run=False, actor=None)
    assert (path, message) in caught.value.errors
    assert not Project.objects.filter(slug="hooked").exists()
    assert not Channel.objects.exists()


def test_imported_channels_are_valid_and_deliver(cast: Cast) -> None:
    channel = {"kind": "webhook", "url": "https://hooks.example.com/T000/B000"}
    checks_import(document=document(channel), dry_run=False, actor=None)
    imported = Channel.objects.get(project__slug="hooked")
    imported.full_clean()
    assert (imported.kind, imported.url, imported.enabled, imported.digest) == (
        "webhook",
        "https://hooks.example.com/T000/B000",
        True,
        False,
    )
