"""The one HTTP exchange of a pull source: a GET of a JSON document, bounded as a whole.

httpx applies a client's timeout to each network operation, not to the exchange: a server that trickles
its answer a few bytes at a time restarts the read timeout with every chunk and could hold a Celery
worker for ever. So the exchange runs in a helper thread and its caller waits for it at most the
client's timeout (10 s, PRODUCT.md §8), then gives up with a ``SourceError``; the abandoned exchange
stops at its next chunk, or at the client's own read timeout.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

import httpx
import orjson

# The whole exchange's budget when the caller's client sets no timeout at all.
DEFAULT_TIMEOUT = 10.0
# A day of one query at a 30 s step is 2,880 samples a series, about 100 KB; an answer past this is a
# query matching thousands of series, refused rather than held in a worker's memory.
MAX_ANSWER_BYTES = 32 * 1024 * 1024
# Threads start only when an exchange needs one, so a prefork Celery master that imports this module
# forks no thread; abandoned exchanges hold theirs until their next chunk or read timeout.
EXCHANGE_THREADS = 32
_EXCHANGES = ThreadPoolExecutor(max_workers=EXCHANGE_THREADS, thread_name_prefix="pull-source")


class SourceError(Exception):
    """A pull source could not be read. The message is one short sentence for the admin console and the
    scorecard ("connection refused", "alias champion not found for model fraud-detector"); it never holds
    a credential."""


class _Abandoned(Exception):
    """The caller stopped waiting; the helper thread drops the answer."""


class _TooLarge(Exception):
    pass


@dataclass(frozen=True)
class Answer:
    status: int
    reason: str
    body: bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> object:
        """The body as JSON; ``ValueError`` when it is not JSON (orjson, like the push API, refuses the
        NaN and Infinity literals)."""
        return orjson.loads(self.body)


def budget_of(client: httpx.Client) -> float:
    timeout = client.timeout
    limits = [value for value in (timeout.connect, timeout.read, timeout.write, timeout.pool) if value]
    return max(limits) if limits else DEFAULT_TIMEOUT


def fetch(
    client: httpx.Client,
    url: str,
    *,
    params: Mapping[str, str],
    headers: Mapping[str, str],
    error: type[SourceError] = SourceError,
) -> Answer:
    """GET ``url`` and return the whole answer, whatever its status; every failure to get one (refused,
    unresolvable, timed out, too large, broken) raises ``error`` with a short message."""
    budget = budget_of(client)
    abandoned = threading.Event()
    # A client without any timeout would let an abandoned exchange wait for ever: give it the budget.
    per_request = None if client.timeout.read or client.timeout.connect else budget
    future = _EXCHANGES.submit(_exchange, client, url, dict(params), dict(headers), per_request, abandoned)
    try:
        return future.result(timeout=budget)
    except FutureTimeout:
        abandoned.set()
        raise error(f"no answer within {budget:g} s") from None
    except _TooLarge:
        raise error(f"answer larger than {MAX_ANSWER_BYTES // (1024 * 1024)} MiB") from None
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        raise error(f"invalid URL: {exc}") from None
    except httpx.HTTPError as exc:
        raise error(describe(exc, budget=budget)) from exc


def _exchange(
    client: httpx.Client,
    url: str,
    params: dict[str, str],
    headers: dict[str, str],
    timeout: float | None,
    abandoned: threading.Event,
) -> Answer:
    extra = {} if timeout is None else {"timeout": timeout}
    with client.stream("GET", url, params=params, headers=headers, **extra) as response:
        body = bytearray()
        for chunk in response.iter_bytes():
            if abandoned.is_set():
                raise _Abandoned
            body += chunk
            if len(body) > MAX_ANSWER_BYTES:
                raise _TooLarge
        return Answer(status=response.status_code, reason=response.reason_phrase, body=bytes(body))


def describe(exc: httpx.HTTPError, *, budget: float) -> str:
    """httpx's error in the words of the source's status line: what went wrong, not a traceback."""
    if isinstance(exc, httpx.ConnectTimeout):
        return f"connection timed out after {budget:g} s"
    if isinstance(exc, httpx.TimeoutException):
        return f"no answer within {budget:g} s"
    if isinstance(exc, httpx.ConnectError):
        return _connect_failure(exc)
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"broken answer: {exc}"
    return f"request failed: {exc}"


def _connect_failure(exc: BaseException) -> str:
    # httpx wraps httpcore's error, which wraps the socket's: the innermost OSError says what happened.
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, socket.gaierror):
            return "cannot resolve the host name"
        if isinstance(cause, ssl.SSLError):
            return f"TLS failure: {cause.reason or cause}"
        if isinstance(cause, OSError) and cause.strerror:
            return f"cannot connect: {cause.strerror.lower()}"
        cause = cause.__cause__ or cause.__context__
    return f"cannot connect: {exc}"
