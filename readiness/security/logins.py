"""Login throttling with django-axes, on ``/login/`` and ``/admin/login/`` alike (both authenticate
through Django's ``authenticate(request, ...)``).

After ``READINESS_LOGIN_FAILURE_LIMIT`` failures for one username from one address, that pair is locked
for ``READINESS_LOGIN_LOCKOUT_MINUTES``: password guessing against an account stalls, while nobody can
lock a colleague out from elsewhere by typing their name wrongly (docs/security.md names the residual
risk of guessing spread over many addresses).
"""

from __future__ import annotations

from typing import Any

from axes.backends import AxesStandaloneBackend
from django.conf import settings
from django.forms.utils import ErrorDict
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse


class LoginThrottleBackend(AxesStandaloneBackend):
    """Axes' lockout check, for logins that come with a request (every login over HTTP does).

    A call without a request (``Client.login`` in tests, a shell) is no HTTP login: there is no
    address to throttle, so this backend steps aside instead of raising as axes' own does."""

    def authenticate(self, request: HttpRequest | None, *args: Any, **kwargs: Any) -> None:
        if request is None:
            return None
        return super().authenticate(request, *args, **kwargs)


def client_address(request: HttpRequest) -> str | None:
    """The address a login came from. X-Forwarded-For is trusted only as far as our own proxies
    wrote it: with ``READINESS_PROXY_COUNT`` = n, the n-th entry from the right (each proxy appends the
    address it saw). Without proxies the header is ignored: a guesser could otherwise send a new
    "address" with every attempt and never be locked out."""
    proxies = settings.READINESS_PROXY_COUNT
    if proxies:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        forwarded = [part for part in forwarded if part]
        if len(forwarded) >= proxies:
            return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR")


def lockout_minutes() -> int:
    return int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)


def lockout_message(username: str | None) -> str:
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
    message = lockout_message(username)
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
