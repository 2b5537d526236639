"""Login throttling on /login/ and /admin/login/: after N failures for one username from one address,
that pair is locked out with a clear message, even with the right password, until the lockout ends."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import time_machine
from axes.models import AccessAttempt
from django.test import Client

from tests.conftest import Cast

PASSWORD = "the-right-password-1"
START = dt.datetime(2026, 11, 22, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def people(cast: Cast, settings: Any) -> Cast:
    settings.AXES_FAILURE_LIMIT = 3
    settings.AXES_COOLOFF_TIME = dt.timedelta(minutes=15)
    for user in (cast.member, cast.admin):
        user.set_password(PASSWORD)
        user.save()
    return cast


def login(client: Client, url: str, username: str, password: str, address: str = "10.0.0.1") -> Any:
    return client.post(url, {"username": username, "password": password}, REMOTE_ADDR=address)


@pytest.mark.parametrize(("url", "username"), [("/login/", "mia"), ("/admin/login/", "admin")])
def test_after_the_limit_even_the_right_password_is_refused_with_a_clear_message(
    client: Client, people: Cast, url: str, username: str
) -> None:
    with time_machine.travel(START, tick=False):
        for _ in range(2):
            assert login(client, url, username, "wrong").status_code == 200
        locked = login(client, url, username, "wrong")
        assert locked.status_code == 429
        assert locked["Retry-After"] == "900"
        page = locked.content.decode()
        assert "Too many failed logins" in page and "blocked for 15 minutes" in page
        # The lockout holds for the right password too: the guesser learns nothing from it.
        still = login(client, url, username, PASSWORD)
        assert still.status_code == 429
        assert "_auth_user_id" not in client.session


def test_the_lockout_ends_after_the_cool_off(client: Client, people: Cast) -> None:
    with time_machine.travel(START, tick=False) as clock:
        for _ in range(3):
            login(client, "/login/", "mia", "wrong")
        assert login(client, "/login/", "mia", PASSWORD).status_code == 429
        clock.shift(dt.timedelta(minutes=16))
        response = login(client, "/login/", "mia", PASSWORD)
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(people.member.pk)


def test_a_successful_login_resets_the_failures(client: Client, people: Cast) -> None:
    with time_machine.travel(START, tick=False):
        for _ in range(2):
            login(client, "/login/", "mia", "wrong")
        assert login(client, "/login/", "mia", PASSWORD).status_code == 302
        client.post("/logout/")
        for _ in range(2):
            login(client, "/login/", "mia", "wrong")
        assert login(client, "/login/", "mia", PASSWORD).status_code == 302


def test_a_lockout_is_per_username_and_address(client: Client, people: Cast) -> None:
    with time_machine.travel(START, tick=False):
        for _ in range(3):
            login(client, "/login/", "mia", "wrong", address="10.0.0.66")
        # Someone typing mia's name wrongly elsewhere cannot lock mia out of her own desk.
        assert login(Client(), "/login/", "mia", PASSWORD, address="10.0.0.7").status_code == 302
        assert login(client, "/login/", "admin", PASSWORD, address="10.0.0.66").status_code == 302
    assert AccessAttempt.objects.filter(username="mia", ip_address="10.0.0.66").exists()


def test_a_forged_forwarded_for_does_not_escape_the_lockout(client: Client, people: Cast) -> None:
    # No proxy is configured (READINESS_PROXY_COUNT=0): X-Forwarded-For is the client's own claim.
    with time_machine.travel(START, tick=False):
        for n in range(3):
            client.post(
                "/login/",
                {"username": "mia", "password": "wrong"},
                REMOTE_ADDR="10.0.0.9",
                HTTP_X_FORWARDED_FOR=f"192.0.2.{n}",
            )
        forged = client.post(
            "/login/",
            {"username": "mia", "password": PASSWORD},
            REMOTE_ADDR="10.0.0.9",
            HTTP_X_FORWARDED_FOR="192.0.2.200",
        )
    assert forged.status_code == 429


def test_behind_one_proxy_the_address_the_proxy_saw_is_throttled(
    client: Client, people: Cast, settings: Any
) -> None:
    settings.READINESS_PROXY_COUNT = 1
    with time_machine.travel(START, tick=False):
        for _ in range(3):
            client.post(
                "/login/",
                {"username": "mia", "password": "wrong"},
                REMOTE_ADDR="172.18.0.5",
                HTTP_X_FORWARDED_FOR="198.51.100.4",
            )
        # Another client behind the same proxy is not locked out with the first.
        other = client.post(
            "/login/",
            {"username": "mia", "password": PASSWORD},
            REMOTE_ADDR="172.18.0.5",
            HTTP_X_FORWARDED_FOR="198.51.100.99",
        )
    assert other.status_code == 302
    assert AccessAttempt.objects.filter(username="mia", ip_address="198.51.100.4").exists()
