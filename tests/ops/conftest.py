"""Helpers of the production-stack tests: a process started with a chosen environment, free ports,
polling, and reading a Prometheus exposition."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
# Production values for check --deploy and the HTTPS behaviour (a strong key, never the default).
STRONG_KEY = "k3y-for-tests-only-" + "aB9xQ2mZ7pL4wR8tY1uV6nC3sD5fG0hJ"
PRODUCTION_ENV = {
    "DJANGO_DEBUG": "false",
    "DJANGO_HTTPS": "true",
    "DJANGO_SECRET_KEY": STRONG_KEY,
    "DJANGO_ALLOWED_HOSTS": "readiness.example.com",
    # The tests render pages without running collectstatic first.
    "DJANGO_STATIC_MANIFEST": "false",
}
# Variables of ours that must not leak from the test run into a process meant to see only `env`.
OURS = (
    "DJANGO_",
    "READINESS_METRICS",
    "READINESS_API",
    "READINESS_RATE",
    "READINESS_LOGIN",
    "LOG_",
    "PROMETHEUS_",
)
# The servers this test run points at (CI's PostgreSQL and Redis): left out, with ``without=SERVERS``,
# for a process that must start on the embedded default.
SERVERS = ("DATABASE_URL", "CELERY_")


def clean_environment(*, without: tuple[str, ...] = (), **env: str | None) -> dict[str, str]:
    """This run's environment without our variables (nor those starting with ``without``), plus ``env``.
    Like every process Readiness runs as, it has a secret key (DEBUG is off), unless
    ``DJANGO_SECRET_KEY=None``: ``None`` leaves a variable out."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(OURS + without)}
    merged: dict[str, str | None] = {**base, "DJANGO_SECRET_KEY": STRONG_KEY, **env}
    return {k: v for k, v in merged.items() if v is not None}


def run_python(
    code: str, *, without: tuple[str, ...] = (), **env: str | None
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` after ``django.setup()`` in a fresh interpreter with the given environment."""
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup()\n{code}"],
        cwd=ROOT,
        env=clean_environment(without=without, DJANGO_SETTINGS_MODULE="readiness.settings", **env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def manage(*args: str, without: tuple[str, ...] = (), **env: str | None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=clean_environment(without=without, **env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate: Callable[[], bool], timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def sample(exposition: str, name: str, **labels: str) -> float:
    """The value of one sample (``name`` with exactly these labels) in a text exposition; 0 if absent."""
    for family in text_string_to_metric_families(exposition):
        for item in family.samples:
            if item.name == name and item.labels == labels:
                return item.value
    return 0.0
