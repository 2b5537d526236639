"""The Content-Security-Policy header (docs/security.md, "Browser").

Every page's script and style comes from our own static files (no CDN, no inline script, no
``eval``), so the policy can allow only ``'self'``: an injected ``<script>`` or an attacker's domain
does not run even if an escaping bug lets markup through. Inline styles stay allowed because Swagger UI
and plotly set ``style`` attributes; styles cannot run code.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

HEADER = "Content-Security-Policy"


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.policy = settings.READINESS_CONTENT_SECURITY_POLICY

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        # A view that needs a narrower policy sets its own; none may widen it by omission.
        if self.policy and HEADER not in response:
            response[HEADER] = self.policy
        return response
