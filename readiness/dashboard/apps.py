from __future__ import annotations

from django.apps import AppConfig


class DashboardConfig(AppConfig):
    """The pages leadership and project people read: the portfolio and each project's scorecard."""

    name = "readiness.dashboard"
    label = "dashboard"
    verbose_name = "Dashboard"
