from __future__ import annotations

from django.apps import AppConfig


class ChecksAsCodeConfig(AppConfig):
    name = "readiness.checks_as_code"
    label = "checks_as_code"
    verbose_name = "Checks as code"
