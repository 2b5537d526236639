from __future__ import annotations

from django.apps import AppConfig


class ProjectsConfig(AppConfig):
    name = "readiness.projects"
    label = "projects"
    verbose_name = "Projects and teams"
