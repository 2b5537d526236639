"""HTTP probes of health-check targets: plain data in, results out; no ORM, no clock of record.

One probe = resolve the host and refuse a denied address, then ask the checked address (the egress
rules against server-side request forgery, readiness/security/egress.py), and judge status and body.
Every probe is bounded by its target's timeout as a whole (DNS, connect, TLS, answer and body
together), and ``probe_all`` runs them concurrently under a semaphore, so a slow or dead target costs
one slot for at most its own timeout and never delays the others beyond that.
"""

from __future__ import annotations

import asyncio
import errno
import ssl
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx

from readiness.security.egress import (
    DeniedDestination,
    EgressRefused,
    Network,
    UnresolvedDestination,
    async_http_client,
    destination_async,
)

# Enough for any health page; a body check never reads a large download to the end.
MAX_BODY_BYTES = 1024 * 1024
USER_AGENT = "Readiness-HealthCheck/1"
# The system resolver blocks, so lookups run in threads, as loop.getaddrinfo does, but not in the
# loop's default executor: it has min(32, cpus + 4) threads, so a few names whose DNS hangs (a thread
# each, until the resolver gives up) would queue every other lookup past its probe's timeout, and
# asyncio.run would wait for them at the end of a cycle. Threads start only when needed.
RESOLVER = ThreadPoolExecutor(max_workers=256, thread_name_prefix="probe-dns")


@dataclass(frozen=True)
class ProbeTarget:
    name: str
    url: str
    method: str = "GET"
    expected_status: int = 200
    expected_body_contains: str = ""
    timeout: float = 5.0


@dataclass(frozen=True)
class ProbeResult:
    up: bool
    latency_ms: float | None  # None when nothing answered (refused, DNS, TLS, timeout, denied)
    reason: str  # why it is down, in words for the project page; empty when up
    status: int | None = None


def probe_client(*, concurrency: int = 100, verify: ssl.SSLContext | bool = True) -> httpx.AsyncClient:
    """The one client a probe cycle shares: the egress rules' client (no proxy, no redirects: a
    health endpoint answering a redirect is not answering its expected status either), without
    keep-alive, so each probe measures a fresh connection (what a client of the service pays) and a
    connection made for one host name is never reused for another name on the same address."""
    return async_http_client(
        verify=verify,
        headers={"User-Agent": USER_AGENT},
        limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=0),
    )


async def probe(target: ProbeTarget, *, client: httpx.AsyncClient, deny: Sequence[Network]) -> ProbeResult:
    """Probe one target; never raises for anything the target does."""
    started = time.perf_counter()
    try:
        async with asyncio.timeout(target.timeout):
            return await _probe(target, client=client, deny=deny, started=started)
    except (TimeoutError, httpx.TimeoutException):
        return ProbeResult(False, None, f"no answer within {target.timeout:g} s")
    except DeniedDestination as exc:
        return ProbeResult(False, None, f"denied: {exc}")
    except UnresolvedDestination as exc:
        return ProbeResult(False, None, f"DNS failure: {exc}")
    except EgressRefused as exc:
        return ProbeResult(False, None, str(exc))
    except httpx.HTTPError as exc:
        return ProbeResult(False, None, _transport_reason(exc))


async def _probe(
    target: ProbeTarget, *, client: httpx.AsyncClient, deny: Sequence[Network], started: float
) -> ProbeResult:
    # Resolved now, checked, and asked at the checked address (readiness/security/egress.py).
    checked = await destination_async(target.url, deny=deny, resolver=RESOLVER)
    request = checked.request(client, target.method, timeout=httpx.Timeout(target.timeout))
    response = await client.send(request, stream=True)
    try:
        status = response.status_code
        if status != target.expected_status:
            return ProbeResult(False, _since(started), f"{status}, expected {target.expected_status}", status)
        needle = target.expected_body_contains
        if needle and target.method == "HEAD":
            # Contradictory settings: say so rather than silently skip the check the target asks for.
            return ProbeResult(
                False, _since(started), f"a HEAD answer has no body to contain {needle!r}", status
            )
        if needle and not await _body_contains(response, needle.encode()):
            return ProbeResult(False, _since(started), f"body does not contain {needle!r}", status)
        return ProbeResult(True, _since(started), "", status)
    finally:
        await response.aclose()


async def _body_contains(response: httpx.Response, needle: bytes) -> bool:
    seen = b""
    read = 0
    async for chunk in response.aiter_bytes():
        read += len(chunk)
        # Keep only the tail a match could start in, so memory stays bounded on a long body.
        seen = seen[-(len(needle) - 1) :] + chunk if len(needle) > 1 else chunk
        if needle in seen:
            return True
        if read >= MAX_BODY_BYTES:
            return False
    return False


def _since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def _transport_reason(exc: httpx.HTTPError) -> str:
    """Name the cause a person can act on, from the chain httpx -> httpcore -> OSError/SSLError."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"TLS error: {cause.verify_message or cause.reason}"
        if isinstance(cause, ssl.SSLError):
            return f"TLS error: {cause.reason or cause}"
        if isinstance(cause, ConnectionRefusedError) or getattr(cause, "errno", None) == errno.ECONNREFUSED:
            return "connection refused"
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, httpx.ConnectError):
        text = str(exc)
        # anyio reports several failed addresses as one message; refused is the common, actionable one.
        if "refused" in text.lower():
            return "connection refused"
        return f"connection failed: {text}"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"invalid HTTP answer: {exc}"
    return f"request failed: {exc.__class__.__name__}: {exc}"


async def probe_all(
    targets: Sequence[ProbeTarget],
    *,
    concurrency: int,
    deny: Sequence[Network],
    client: httpx.AsyncClient | None = None,
) -> list[ProbeResult]:
    """Probe every target, at most ``concurrency`` at once; results in the order of ``targets``.

    A probe's timeout starts when it gets its slot, so waiting for a slot never eats into it; with
    more slow targets than slots the cycle is longer, but each result still judges its own target.
    """
    gate = asyncio.Semaphore(concurrency)

    async def bounded(target: ProbeTarget, shared: httpx.AsyncClient) -> ProbeResult:
        async with gate:
            try:
                return await probe(target, client=shared, deny=deny)
            except Exception as exc:  # a bug here must cost one result, not the cycle's
                return ProbeResult(False, None, f"probe failed: {exc.__class__.__name__}: {exc}")

    if client is not None:
        return list(await asyncio.gather(*(bounded(t, client) for t in targets)))
    async with probe_client(concurrency=concurrency) as own:
        return list(await asyncio.gather(*(bounded(t, own) for t in targets)))
