"""Login throttling on /login/ and /admin/login/: after N failures for one username from one address,
that pair is locked out with a clear message, even with the right password, until the lockout ends;
after M failures from one address whatever the usernames, the address is. Addresses are IPv4 addresses
or IPv6 /64s, taken behind our proxies from X-Forwarded-For; an admin unlocks either in the console."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import time_machine
from axes.models import AccessAttempt
from django.contrib.messages import get_messages
from django.test import Client, RequestFactory
from django.urls import reverse

from readiness.audit.models import AuditEntry
from readiness.security.logins import client_address
from tests.conftest import Cast

PASSWORD = "the-right-password-1"
START = dt.datetime(2026, 11, 22, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def people(cast: Cast, settings: Any) -> Cast:
    settings.AXES_FAILURE_LIMIT = 3
    settings.READINESS_LOGIN_ADDRESS_FAILURE_LIMIT = 5
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
        # Read the session inside the travel: the whole test lives on its own clock.
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


# --- password spraying: the per-address limit across usernames ------------------------------------


def test_spraying_one_password_over_many_usernames_locks_the_address(client: Client, people: Cast) -> None:
    with time_machine.travel(START, tick=False):
        # Two tries each, under the pair limit of 3: only the address's total can stop this.
        for username in ("mia", "bob", "no-such-person", "carol"):
            for _ in range(2 if username != "carol" else 1):
                login(client, "/login/", username, "Summer2026!", address="203.0.113.9")
        # The fifth failure from the address was the last: every username is refused from there now,
        # one that never failed there included, even with the right password.
        locked = login(client, "/login/", "admin", PASSWORD, address="203.0.113.9")
        elsewhere = login(Client(), "/login/", "admin", PASSWORD, address="203.0.113.10")
    assert locked.status_code == 429
    assert locked["Retry-After"] == "900"
    assert "Too many failed logins from your address" in locked.content.decode()
    assert "whatever the username" in locked.content.decode()
    assert elsewhere.status_code == 302  # IPv4 addresses count one by one


def test_a_good_login_does_not_reset_the_address_s_count(client: Client, people: Cast) -> None:
    with time_machine.travel(START, tick=False):
        for username in ("bob", "carol", "dave", "no-such-person"):
            login(client, "/login/", username, "Summer2026!", address="203.0.113.9")
        # The sprayer's own valid account: its good login clears only its own (username, address).
        assert login(client, "/login/", "mia", PASSWORD, address="203.0.113.9").status_code == 302
        client.post("/logout/")
        login(client, "/login/", "lea", "Summer2026!", address="203.0.113.9")
        assert login(client, "/login/", "mia", PASSWORD, address="203.0.113.9").status_code == 429


def test_the_address_limit_is_30_by_default_and_counted_by_our_handler() -> None:
    from readiness import settings as defaults

    assert defaults.READINESS_LOGIN_ADDRESS_FAILURE_LIMIT == 30
    assert defaults.AXES_HANDLER == "readiness.security.logins.LoginThrottleHandler"


# --- which address: IPv6 /64s, and X-Forwarded-For behind our proxies -----------------------------


def test_ipv6_addresses_of_one_64_are_one_address(client: Client, people: Cast) -> None:
    with time_machine.travel(START, tick=False):
        # A host holds its whole /64 and can take a new address for every try.
        for host in ("a", "b", "c"):
            login(client, "/login/", "mia", "wrong", address=f"2001:db8:1:2::{host}")
        same_64 = login(client, "/login/", "mia", PASSWORD, address="2001:db8:1:2:ffff:ffff:ffff:ffff")
        next_64 = login(Client(), "/login/", "mia", PASSWORD, address="2001:db8:1:3::a")
    assert same_64.status_code == 429
    assert next_64.status_code == 302
    assert list(AccessAttempt.objects.values_list("ip_address", flat=True)) == ["2001:db8:1:2::"]


@pytest.mark.parametrize(
    ("proxies", "remote", "forwarded", "expected"),
    [
        (0, "192.0.2.7", "198.51.100.4", "192.0.2.7"),  # no proxy of ours: the header is the client's claim
        (1, "172.18.0.5", "198.51.100.4", "198.51.100.4"),  # nginx alone
        (1, "172.18.0.5", "6.6.6.6, 7.7.7.7, 198.51.100.4", "198.51.100.4"),  # spoofed entries on the left
        (2, "172.18.0.5", "6.6.6.6, 198.51.100.4, 10.0.3.7", "198.51.100.4"),  # load balancer, nginx
        (2, "172.18.0.5", "198.51.100.4", "198.51.100.4"),  # the load balancer was bypassed
        (1, "172.18.0.5", "", "172.18.0.5"),  # no header: the nearest hop is all there is
        (1, "172.18.0.5", "unknown", "172.18.0.5"),  # no address where ours should be
        (1, "172.18.0.5", "2001:db8:1:2::77", "2001:db8:1:2::"),
        (0, "::ffff:192.0.2.7", "", "192.0.2.7"),  # an IPv4 client of a dual-stack listener
        (0, "2001:db8::1", "", "2001:db8::"),
    ],
)
def test_the_client_address_is_the_one_our_outermost_proxy_saw(
    settings: Any, proxies: int, remote: str, forwarded: str, expected: str
) -> None:
    settings.READINESS_PROXY_COUNT = proxies
    request = RequestFactory().post("/login/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded)
    assert client_address(request) == expected


def test_behind_a_load_balancer_and_nginx_spoofed_entries_do_not_escape_the_lockout(
    client: Client, people: Cast, settings: Any
) -> None:
    settings.READINESS_PROXY_COUNT = 2
    with time_machine.travel(START, tick=False):
        for n in range(3):
            client.post(
                "/login/",
                {"username": "mia", "password": "wrong"},
                REMOTE_ADDR="172.18.0.5",
                # What the client sent, what the load balancer saw, what nginx saw (the balancer).
                HTTP_X_FORWARDED_FOR=f"192.0.2.{n}, 198.51.100.4, 10.0.3.7",
            )
        forged = client.post(
            "/login/",
            {"username": "mia", "password": PASSWORD},
            REMOTE_ADDR="172.18.0.5",
            HTTP_X_FORWARDED_FOR="192.0.2.200, 198.51.100.4, 10.0.3.8",
        )
    assert forged.status_code == 429
    assert AccessAttempt.objects.get().ip_address == "198.51.100.4"


# --- an admin unlocks in the console ---------------------------------------------------------------


@pytest.fixture
def console(people: Cast) -> Client:
    console = Client()
    # Its session opens on the tests' clock (START), as every login of this module does.
    with time_machine.travel(START, tick=False):
        console.force_login(people.admin)
    return console


def test_an_admin_unlocks_a_locked_account_in_the_console(
    client: Client, people: Cast, console: Client
) -> None:
    with time_machine.travel(START, tick=False):
        for address in ("10.0.0.1", "10.0.0.2"):
            for _ in range(3):
                login(client, "/login/", "mia", "wrong", address=address)
        # Refused even with the right password, and counted (a lockout cannot be waited out by guessing).
        assert login(client, "/login/", "mia", PASSWORD).status_code == 429

        response = console.post(
            reverse("admin:auth_user_changelist"),
            {"action": "unlock_login", "_selected_action": [people.member.pk]},
        )
        assert response.status_code == 302
        shown = [str(m) for m in get_messages(response.wsgi_request)]
        assert shown == ["mia: login unlocked (7 failed attempts cleared)."]

        for address in ("10.0.0.1", "10.0.0.2"):
            assert login(Client(), "/login/", "mia", PASSWORD, address=address).status_code == 302
    entry = AuditEntry.objects.get(action="login.unlock")
    assert (entry.actor, entry.object_repr) == (people.admin, "mia")
    assert entry.before == {"username": "mia", "failures": 7, "addresses": ["10.0.0.1", "10.0.0.2"]}


def test_an_admin_unlocks_a_locked_address_in_the_console(
    client: Client, people: Cast, console: Client
) -> None:
    with time_machine.travel(START, tick=False):
        for username in ("bob", "carol", "dave", "oscar", "lea"):
            login(client, "/login/", username, "Summer2026!", address="203.0.113.9")
        assert login(client, "/login/", "mia", PASSWORD, address="203.0.113.9").status_code == 429

        one_row = AccessAttempt.objects.filter(username="bob").get()
        response = console.post(
            reverse("admin:axes_accessattempt_changelist"),
            {"action": "unlock_addresses", "_selected_action": [one_row.pk]},
        )
        assert response.status_code == 302
        assert login(client, "/login/", "mia", PASSWORD, address="203.0.113.9").status_code == 302
    assert not AccessAttempt.objects.exists()
    entry = AuditEntry.objects.get(action="login.unlock_address")
    assert entry.actor == people.admin
    # mia's refused try counts too: failures during a lockout extend it.
    assert entry.before["usernames"] == ["bob", "carol", "dave", "lea", "mia", "oscar"]


def test_someone_without_the_console_cannot_unlock(client: Client, people: Cast) -> None:
    with time_machine.travel(START, tick=False):
        for _ in range(3):
            login(client, "/login/", "mia", "wrong", address="10.0.0.1")
        outsider = Client()
        outsider.force_login(people.outsider)
        response = outsider.post(
            reverse("admin:auth_user_changelist"),
            {"action": "unlock_login", "_selected_action": [people.member.pk]},
        )
        assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login"))
        assert login(client, "/login/", "mia", PASSWORD, address="10.0.0.1").status_code == 429
    assert not AuditEntry.objects.filter(action__startswith="login.").exists()
