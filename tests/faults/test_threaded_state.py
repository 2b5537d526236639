"""Per-process state under gunicorn's threads (the Dockerfile runs 4 per process): request threads
that reach it at the same instant, hammered here with a barrier so they really do."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable, Iterator

import pytest
import redis

from readiness.security.ratelimit import KEY_PREFIX, WindowLimiter, lease_size
from readiness.security.rates import Rate
from tests.servers import RedisServer, free_port

THREADS = 8
ROUNDS = 40
WINDOW = 7  # any window number: the limiter is told which window a request falls in


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.fail("the rate limiter's threaded test needs redis-server")
    server = RedisServer(free_port())
    server.start()
    yield server
    server.stop()


def test_threads_that_find_the_lease_spent_at_once_lease_one_slice_between_them(
    private_redis: RedisServer, report: Callable[[str], None]
) -> None:
    # 1,000 a minute: a process leases 10 at a time. What it leased and did not spend is lost to the
    # other processes for the window, so the limiter promises at most one slice unspent per process;
    # threads that each leased a slice of their own would hold several.
    rate = Rate(requests=1000, seconds=60)
    limiter = WindowLimiter(private_redis.url)
    counter = redis.Redis.from_url(private_redis.url)
    key = "a-token-hash"
    admitted: list[bool] = []
    start, done = threading.Barrier(THREADS + 1), threading.Barrier(THREADS + 1)

    def request_thread() -> None:
        for _ in range(ROUNDS):
            start.wait()
            admitted.append(limiter.allow(key, window=WINDOW, rate=rate))
            done.wait()

    threads = [threading.Thread(target=request_thread) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    most_unspent = 0
    for _ in range(ROUNDS):
        start.wait()  # every thread asks at once
        done.wait()
        leased = int(counter.get(f"{KEY_PREFIX}{key}:{WINDOW}") or 0)
        most_unspent = max(most_unspent, leased - len(admitted))
    for thread in threads:
        thread.join()
    leases = int(counter.get(f"{KEY_PREFIX}{key}:{WINDOW}") or 0) // lease_size(rate.requests)
    report(
        f"rate-limit leases under {THREADS} threads: {len(admitted)} requests, {leases} leases of "
        f"{lease_size(rate.requests)}, at most {most_unspent} leased and unspent at once"
    )
    assert admitted == [True] * THREADS * ROUNDS
    assert most_unspent < lease_size(rate.requests)
