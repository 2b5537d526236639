"""The Celery app: ``celery -A readiness worker --beat`` finds it as ``readiness.celery:app``."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "readiness.settings")

app = Celery("readiness")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
