"""Per-token API rate limits: ``READINESS_API_RATE_LIMIT`` requests per window for each bearer token,
then 429 with ``Retry-After`` in the API's error shape.

Fixed windows counted in Redis, so every web process and host behind the load balancer shares one count
per token. The broker's Redis is used when the broker is Redis; ``READINESS_RATE_LIMIT_REDIS_URL``
names another (for a RabbitMQ deployment). Without Redis, or while it is unreachable, each process
counts alone in memory: the limit then holds per process (N processes let a token make up to N times
the rate), and an outage of the counter never turns into an outage of the API: an ingestion client
must keep getting 202s while Redis is down.

A process does not ask Redis for every request: it leases a slice of the window's allowance (1% of the
limit, at most 50 requests) with one atomic INCRBY and spends it locally, so a pipeline pushing
hundreds of times a second costs a Redis round trip every few dozen pushes instead of every push (the
round trip was a tenth of a small push's server time). The price: a slice a process leased but did not
spend is lost to the others for that window, so a token may be refused up to 1% of its limit early per
web process. With small limits the slice is one request and the count is exact.

The count is keyed by the SHA-256 of the presented secret (as tokens are stored), so the secret never
reaches Redis, and an unknown or revoked token is limited like a valid one before its lookup costs a
database query.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections.abc import Callable

import redis
from django.conf import settings
from django.http import HttpRequest, HttpResponse

from readiness.security.bearer import bearer_secret
from readiness.security.errors import error_response
from readiness.security.rates import Rate

log = logging.getLogger(__name__)

KEY_PREFIX = "readiness:ratelimit:"
# A counter call waits at most this long; past it the request goes on under the in-memory count.
REDIS_TIMEOUT = 0.25
# After Redis failed, this many seconds under the in-memory count before trying Redis again, so an
# outage costs one timeout per process per interval, not one per request.
REDIS_RETRY_AFTER = 5.0
MAX_LEASE = 50
# Add a lease to the window's count; the first lease of a window sets its expiry (a little past the
# window, for clock skew between web hosts). One round trip, atomic.
LEASE_SCRIPT = """
local count = redis.call('INCRBY', KEYS[1], ARGV[1])
if count == tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return count
"""


def lease_size(limit: int) -> int:
    return max(1, min(MAX_LEASE, limit // 100))


class SharedCounter:
    """The window's count of one token across every process, in Redis. Each thread talks over a
    connection of its own with the bare protocol calls: the client's pool and command layers cost
    three times the round trip itself."""

    def __init__(self, url: str) -> None:
        self.pool = redis.ConnectionPool.from_url(
            url, socket_connect_timeout=REDIS_TIMEOUT, socket_timeout=REDIS_TIMEOUT
        )
        self.sha = hashlib.sha1(LEASE_SCRIPT.encode()).hexdigest()  # noqa: S324 -- Redis names scripts by SHA-1
        self.local = threading.local()

    def add(self, key: str, amount: int, ttl_ms: int) -> int:
        """Add ``amount`` to the count and return the new total."""
        connection = getattr(self.local, "connection", None)
        if connection is None:
            connection = self.local.connection = self.pool.make_connection()
        try:
            try:
                connection.send_command("EVALSHA", self.sha, 1, key, amount, ttl_ms)
                return int(connection.read_response())
            except redis.exceptions.NoScriptError:
                # First use on this Redis (or after a restart emptied its script cache): send the script.
                connection.send_command("EVAL", LEASE_SCRIPT, 1, key, amount, ttl_ms)
                return int(connection.read_response())
        except (redis.RedisError, OSError):
            # A half-read reply must never be taken for the next request's count.
            connection.disconnect()
            raise


class WindowLimiter:
    """Decides each request: spend from this process's lease, or lease more, or refuse.

    Only the current window is kept (every token shares the window boundaries), so memory stays
    bounded by the tokens seen within one window."""

    def __init__(self, url: str) -> None:
        self.shared = SharedCounter(url) if url else None
        self.redis_down_until = 0.0
        self.lock = threading.Lock()
        self.window = -1
        self.leases: dict[str, int] = {}  # requests this process may still admit, per token
        self.counts: dict[str, int] = {}  # the in-memory count, without Redis
        self.leasing: dict[str, threading.Lock] = {}  # one lease in flight per token, see allow()

    def allow(self, key: str, *, window: int, rate: Rate) -> bool:
        if self._spend(key, window):
            return True
        # gunicorn's threads (the Dockerfile runs 4 per process) that find the lease spent at the same
        # instant would each lease a slice, and the process would hold several unspent, lost to the
        # others for the window. One leases; the others wait for it and spend from its slice.
        with self.lock:
            leasing = self.leasing.setdefault(key, threading.Lock())
        with leasing:
            if self._spend(key, window):
                return True
            granted = self._lease(key, window=window, rate=rate)
            if granted <= 0:
                return False
            with self.lock:
                if window == self.window:
                    self.leases[key] = self.leases.get(key, 0) + granted - 1
            return True

    def _spend(self, key: str, window: int) -> bool:
        """Admit one request from this process's lease, if anything is left of it."""
        with self.lock:
            if window != self.window:
                self.window, self.leases, self.counts, self.leasing = window, {}, {}, {}
            left = self.leases.get(key, 0)
            if left > 0:
                self.leases[key] = left - 1
                return True
        return False

    def _lease(self, key: str, *, window: int, rate: Rate) -> int:
        """How many requests this process may admit now (0: none), counted where the count lives."""
        if self.shared is not None and time.monotonic() >= self.redis_down_until:
            size = lease_size(rate.requests)
            try:
                total = self.shared.add(f"{KEY_PREFIX}{key}:{window}", size, (rate.seconds + 5) * 1000)
            except (redis.RedisError, OSError) as exc:
                self.redis_down_until = time.monotonic() + REDIS_RETRY_AFTER
                log.warning(
                    "rate-limit counter unreachable (%s); counting in this process for %.0f s",
                    type(exc).__name__,
                    REDIS_RETRY_AFTER,
                )
            else:
                # The part of the lease still inside the limit; past it, nothing.
                return max(0, min(size, rate.requests - (total - size)))
        with self.lock:
            count = self.counts.get(key, 0) + 1
            self.counts[key] = count
        return 1 if count <= rate.requests else 0


class ApiRateLimitMiddleware:
    """Applies the per-token limit to every ``/api/`` request that carries a bearer token."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.limiter = WindowLimiter(settings.READINESS_RATE_LIMIT_REDIS_URL)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        rate: Rate | None = settings.READINESS_API_RATE_LIMIT
        if rate is None or not request.path_info.startswith("/api/"):
            return self.get_response(request)
        secret = bearer_secret(request)
        if secret is None:
            return self.get_response(request)
        now = time.time()
        window = int(now // rate.seconds)
        key = hashlib.sha256(secret.encode()).hexdigest()
        if self.limiter.allow(key, window=window, rate=rate):
            return self.get_response(request)
        retry_after = max(1, math.ceil((window + 1) * rate.seconds - now))
        return error_response(
            429,
            "rate_limited",
            f"this token may make {rate.requests} requests per {rate.seconds} s; retry after {retry_after} s",
            {"limit": rate.requests, "window_seconds": rate.seconds, "retry_after": retry_after},
            headers={"Retry-After": str(retry_after)},
        )
