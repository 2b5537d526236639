from __future__ import annotations

from django.apps import AppConfig


class SecurityConfig(AppConfig):
    """No models of its own: installed for its admin console actions (unlocking logins)."""

    name = "readiness.security"
    label = "security"
    verbose_name = "Security"
