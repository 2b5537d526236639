"""Reading a project token from ``Authorization: Bearer <token>``; shared by DRF views and the push
fast path so both authenticate exactly alike."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.db import connection
from django.http import HttpRequest
from django.utils import timezone

from readiness.projects.models import (
    LAST_USED_RESOLUTION,
    TOKEN_PREFIX,
    ProjectToken,
    hash_token_secret,
    token_touch,
)
from readiness.security.bearer import bearer_secret


def token_from_request(request: HttpRequest) -> ProjectToken | None:
    """The usable token the request carries, or None (absent, unknown or revoked)."""
    secret = bearer_secret(request)
    if secret is None:
        return None
    token = ProjectToken.objects.for_secret(secret)
    if token is not None:
        token.touch()
    return token


# The table name comes from the model; every value is a parameter.
PUSH_TOKEN_SQL = (
    "SELECT id, project_id, name, scopes, (last_used_at IS NULL OR last_used_at < %s) "  # noqa: S608
    f"FROM {ProjectToken._meta.db_table} WHERE hashed_secret = %s AND revoked_at IS NULL"
)


@dataclass(frozen=True)
class PushCaller:
    token_id: int
    project_id: int
    name: str  # the token's name: the points it sends are stored as from "push:<name>" or "otlp:<name>"
    scopes: list[str]


# A web process keeps the callers it looked up for this long: at hundreds of pushes a second one
# token SELECT a second per process instead of one per push (a fifth of a push's statements). It is
# also the bound on revocation: a revoked token (or a token whose scopes changed) is refused by every
# process at most this long after the change committed (tests/telemetry/ingest/test_push_api.py).
PUSH_CALLER_SECONDS = 1.0
PUSH_CALLERS_KEPT = 10_000


class _PushCallers:
    """The usable tokens this process looked up lately, by the hash of their secret (the secret itself
    is never kept). Unknown and revoked tokens are not kept: a refusal always asks the database."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.entries: dict[str, tuple[float, PushCaller]] = {}
        self.lock = threading.Lock()

    def get(self, hashed: str) -> PushCaller | None:
        entry = self.entries.get(hashed)
        if entry is None or self.clock() >= entry[0]:
            return None
        return entry[1]

    def keep(self, hashed: str, caller: PushCaller) -> None:
        with self.lock:
            now = self.clock()
            if len(self.entries) >= PUSH_CALLERS_KEPT:  # forget the expired ones; bounded memory
                self.entries = {key: entry for key, entry in self.entries.items() if entry[0] > now}
            self.entries[hashed] = (now + PUSH_CALLER_SECONDS, caller)


push_callers = _PushCallers()


def push_caller(secret: str) -> PushCaller | None:
    """The metrics push's token lookup: the same rule as ``ProjectToken.objects.for_secret`` (usable
    tokens by hash), as one raw indexed SELECT of what the push needs, without loading the project: at
    hundreds of pushes a second the ORM's query compilation was a fifth of a request. The answer is
    kept for PUSH_CALLER_SECONDS."""
    if not secret.startswith(TOKEN_PREFIX):
        return None
    hashed = hash_token_secret(secret)
    caller = push_callers.get(hashed)
    if caller is not None:
        return caller
    meta = ProjectToken._meta
    now = timezone.now()
    stale_before = meta.get_field("last_used_at").get_db_prep_value(now - LAST_USED_RESOLUTION, connection)
    with connection.cursor() as cursor:
        cursor.execute(PUSH_TOKEN_SQL, [stale_before, hashed])
        row = cursor.fetchone()
    if row is None:
        return None
    token_id, project_id, name, scopes, stale = row
    if stale:
        token_touch(pk=token_id, last_used_at=None)
    caller = PushCaller(
        token_id=token_id,
        project_id=project_id,
        name=name,
        scopes=meta.get_field("scopes").from_db_value(scopes, None, connection),
    )
    push_callers.keep(hashed, caller)
    return caller
