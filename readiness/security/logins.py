"""Login throttling with django-axes, on ``/login/`` and ``/admin/login/`` alike (both authenticate
through Django's ``authenticate(request, ...)``). Two limits, each counted over
``READINESS_LOGIN_LOCKOUT_MINUTES``, lock for that long:

- ``READINESS_LOGIN_FAILURE_LIMIT`` failures for one username from one address lock that pair: password
  guessing against an account stalls, while nobody can lock a colleague out from elsewhere by typing
  their name wrongly.
- ``READINESS_LOGIN_ADDRESS_FAILURE_LIMIT`` failures from one address, whatever the usernames, lock the
  address: password spraying (one likely password tried against many accounts) stalls too.

An address is an IPv4 address, or an IPv6 /64: one host is handed a whole /64 and may pick any address in
it for each attempt. Behind proxies it is the address the outermost of them saw (``client_address``).
An admin unlocks a person or an address in the admin console (readiness/security/admin.py).
"""

from __future__ import annotations

import ipaddress
from datetime import datetime
from typing import TYPE_CHECKING, Any

from axes.attempts import get_cool_off_threshold
from axes.backends import AxesStandaloneBackend
from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_failure_limit
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import QuerySet, Sum
from django.forms.utils import ErrorDict
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from readiness.audit.services import audit_record

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

# IPv6 hosts get a /64 each (RFC 6177's smallest end-site assignment, SLAAC's fixed prefix length).
IPV6_GROUP_PREFIX = 64


class LoginThrottleBackend(AxesStandaloneBackend):
    """Axes' lockout check, for logins that come with a request (every login over HTTP does).

    A call without a request (``Client.login`` in tests, a shell) is no HTTP login: there is no
    address to throttle, so this backend steps aside instead of raising as axes' own does."""

    def authenticate(self, request: HttpRequest | None, *args: Any, **kwargs: Any) -> None:
        if request is None:
            return None
        return super().authenticate(request, *args, **kwargs)


class LoginThrottleHandler(AxesDatabaseHandler):
    """Axes' database handler with the second limit, per address across usernames.

    Axes can key attempts on several parameter combinations at once, but compares each with the one
    ``AXES_FAILURE_LIMIT``, and a successful login resets every combination: a sprayer holding one
    valid account would wipe the address's count with each good login. So attempts stay keyed on
    (username, address), a good login resets only its own pair, and the address's total is counted
    here against its own limit."""

    def get_failures(self, request: HttpRequest, credentials: dict | None = None) -> int:
        pair = super().get_failures(request, credentials)
        recent = _recent_attempts(address=request.axes_ip_address, since=get_cool_off_threshold(request))
        if _failures(recent) >= settings.READINESS_LOGIN_ADDRESS_FAILURE_LIMIT:
            request.readiness_address_locked = True
            # Axes compares this number with the pair's limit: reaching it refuses every username.
            return max(pair, get_failure_limit(request, credentials))
        return pair


def _recent_attempts(*, address: str | None, since: datetime) -> QuerySet[AccessAttempt]:
    return AccessAttempt.objects.filter(ip_address=address, attempt_time__gte=since)


def _failures(attempts: QuerySet[AccessAttempt]) -> int:
    return attempts.aggregate(total=Sum("failures_since_start"))["total"] or 0


# --- the client's address --------------------------------------------------------------------------


def client_address(request: HttpRequest) -> str | None:
    """The address a login came from, as throttling counts it: ``REMOTE_ADDR``, or behind
    ``READINESS_PROXY_COUNT`` = N proxies of ours the N-th entry of ``X-Forwarded-For`` from the right.
    Each proxy appends the address it saw, the nearest one last, so that entry is what the outermost
    of ours saw; entries further left came with the request and may be anything. Without proxies the
    header is ignored: a guesser could otherwise send a new "address" with every attempt."""
    remote = request.META.get("REMOTE_ADDR")
    proxies = settings.READINESS_PROXY_COUNT
    if proxies:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        forwarded = [part for part in forwarded if part]
        if forwarded:
            # Fewer entries than proxies: the request entered behind the outermost one, and every
            # entry is still one of ours; the leftmost is the furthest out.
            chosen = forwarded[-proxies] if len(forwarded) >= proxies else forwarded[0]
            # Not an address where ours should be ("unknown", a port): the nearest hop is all we know.
            if (grouped := address_group(chosen)) is not None:
                return grouped
    return address_group(remote)


def address_group(address: str | None) -> str | None:
    """The unit throttling counts: an IPv4 address as it is, an IPv6 address as its /64, an IPv4-mapped
    IPv6 address as its IPv4 one; ``None`` for no address. A /64 is written as its first address
    (``2001:db8:1:2::``): axes stores addresses in an address column (``inet`` on PostgreSQL), which
    takes no prefix length."""
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        # Built from the integer: a scoped address (fe80::1%eth0) has no network of its own.
        network = ipaddress.IPv6Network((int(ip), IPV6_GROUP_PREFIX), strict=False)
        return str(network.network_address)
    return str(ip)


# --- what the person sees ---------------------------------------------------------------------------


def lockout_minutes() -> int:
    return int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)


def lockout_message(username: str | None, *, address_locked: bool = False) -> str:
    if address_locked:
        return (
            f"Too many failed logins from your address: logging in from it is blocked for "
            f"{lockout_minutes()} minutes, whatever the username. Try again later, or ask an admin to "
            f"unlock the address."
        )
    who = f'as "{username}" ' if username else ""
    return (
        f"Too many failed logins: logging in {who}from your address is blocked for "
        f"{lockout_minutes()} minutes. Try again later, or ask an admin to unlock the account."
    )


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: dict | None = None
) -> HttpResponse:
    """The login page again (the dashboard's or the admin's, whichever was used), its form showing why,
    with 429 and ``Retry-After``: the person sees what happened and when to come back."""
    username = (credentials or {}).get("username") or request.POST.get("username")
    message = lockout_message(username, address_locked=getattr(request, "readiness_address_locked", False))
    retry_after = str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
    context = getattr(original_response, "context_data", None)
    if isinstance(original_response, TemplateResponse) and context and "form" in context:
        form = context["form"]
        # Replace the form's "wrong password" error: the password may have been right this time.
        form._errors = ErrorDict({"__all__": form.error_class([message], error_class="nonfield")})
        response = TemplateResponse(request, original_response.template_name, context, status=429)
        response.render()
    else:
        response = HttpResponse(message, status=429, content_type="text/plain; charset=utf-8")
    response["Retry-After"] = retry_after
    return response


# --- unlocking (the admin console) ------------------------------------------------------------------


def login_unlock(*, user: AbstractBaseUser, by: AbstractBaseUser) -> int:
    """Clear every failed login recorded for ``user``'s username, from every address: the person can
    log in again at once. Audited; returns how many failures were cleared."""
    username = user.get_username()
    attempts = AccessAttempt.objects.filter(username=username)
    cleared = _failures(attempts)
    addresses = sorted({a for a in attempts.values_list("ip_address", flat=True) if a})
    attempts.delete()
    audit_record(
        action="login.unlock",
        instance=user,
        actor=by,
        before={"username": username, "failures": cleared, "addresses": addresses},
        after={"username": username, "failures": 0, "addresses": []},
    )
    return cleared


def address_unlock(*, address: str, by: AbstractBaseUser) -> int:
    """Clear every failed login recorded from ``address`` (as throttling counts it), whatever the
    username: an address locked for spraying, or a shared office address, can log in again at once.
    Audited; returns how many failures were cleared."""
    attempts = AccessAttempt.objects.filter(ip_address=address)
    first = attempts.order_by("pk").first()
    if first is None:
        return 0
    cleared = _failures(attempts)
    usernames = sorted({u for u in attempts.values_list("username", flat=True) if u})
    attempts.delete()
    audit_record(
        action="login.unlock_address",
        instance=first,
        actor=by,
        before={"address": address, "failures": cleared, "usernames": usernames},
        after={"address": address, "failures": 0, "usernames": []},
    )
    return cleared
