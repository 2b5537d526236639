"""Can this process do its work? The database and the broker, each checked with a short timeout.

An orchestrator asks ``/readyz`` every few seconds and stops routing to a process that says no, so a
check must be cheap (one round trip each) and never hang longer than the orchestrator waits.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from django.conf import settings
from django.db import connection
from kombu import Connection

log = logging.getLogger(__name__)

# Seconds a broker check may take; PostgreSQL's own connect_timeout bounds the database check.
BROKER_TIMEOUT = 2.0


@dataclass(frozen=True)
class DependencyState:
    name: str
    ok: bool
    error: str = ""


def database_state() -> DependencyState:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        # A failed connection must not be reused by the next request of this thread.
        connection.close_if_unusable_or_obsolete()
        return DependencyState("database", False, _describe(exc))
    return DependencyState("database", True)


def broker_state() -> DependencyState:
    url = settings.CELERY_BROKER_URL
    options = dict(getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}) or {})
    if url.startswith("filesystem"):
        # The embedded default's "broker" is a folder: reachable means the folder is writable.
        folder = str(options.get("data_folder_in", ""))
        if folder and os.access(folder, os.W_OK):
            return DependencyState("broker", True)
        return DependencyState("broker", False, f"broker folder {folder!r} is not writable")
    options.update(socket_connect_timeout=BROKER_TIMEOUT, socket_timeout=BROKER_TIMEOUT)
    try:
        with Connection(url, connect_timeout=BROKER_TIMEOUT, transport_options=options) as broker:
            broker.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=BROKER_TIMEOUT)
    except Exception as exc:
        return DependencyState("broker", False, _describe(exc))
    return DependencyState("broker", True)


def _describe(exc: Exception) -> str:
    # The exception's class and first line: enough to act on, never a URL with its password.
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    log.warning("readiness check failed: %s: %s", type(exc).__name__, first_line)
    return f"{type(exc).__name__}: {first_line}"[:300]
