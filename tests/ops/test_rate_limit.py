"""Per-token API rate limits: 429 with Retry-After in the error shape, recovery in the next window,
counts shared by every web process through Redis, and an API that keeps working without Redis."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import redis
import time_machine
from django.test import Client

from readiness.projects.services import token_create
from readiness.security.rates import Rate, parse_rate
from tests.conftest import Cast
from tests.ops.conftest import free_port
from tests.servers import RedisServer

# Mid-window, so a slow test never crosses into the next minute by accident.
START = dt.datetime(2026, 11, 22, 10, 0, 20, tzinfo=dt.UTC)
BODY = orjson.dumps({"points": [{"metric": "latency_ms", "value": 1.0}]})


@pytest.fixture(scope="module")
def private_redis() -> Iterator[RedisServer]:
    server = RedisServer(free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=["redis", "memory"])
def counter_store(request: Any, settings: Any, private_redis: RedisServer) -> str:
    """Both stores the limiter counts in: the shared Redis, and each process's memory (no Redis)."""
    settings.READINESS_RATE_LIMIT_REDIS_URL = private_redis.url if request.param == "redis" else ""
    return request.param


@pytest.fixture
def three_a_minute(settings: Any) -> Rate:
    settings.READINESS_API_RATE_LIMIT = Rate(requests=3, seconds=60)
    return settings.READINESS_API_RATE_LIMIT


def token(cast: Cast, name: str = "ci") -> str:
    return token_create(project=cast.project, name=name, scopes=["metrics:write", "scorecard:read"])[1]


def push(client: Client, secret: str) -> Any:
    return client.post(
        "/api/v1/metrics",
        BODY,
        content_type="application/json",
        headers={"Authorization": f"Bearer {secret}"},
    )


def test_over_the_limit_a_token_gets_429_with_retry_after_then_recovers(
    cast: Cast, counter_store: str, three_a_minute: Rate
) -> None:
    secret, client = token(cast), Client()
    with time_machine.travel(START, tick=False) as clock:
        assert [push(client, secret).status_code for _ in range(3)] == [202, 202, 202]
        refused = push(client, secret)
        assert refused.status_code == 429
        # 40 s are left of the minute that began at 10:00:00.
        assert refused["Retry-After"] == "40"
        error = refused.json()["error"]
        assert error["code"] == "rate_limited"
        assert "3 requests per 60 s" in error["message"]
        assert error["details"] == {"limit": 3, "window_seconds": 60, "retry_after": 40}
        clock.shift(dt.timedelta(seconds=40))
        assert push(client, secret).status_code == 202


def test_a_refused_push_stores_nothing(cast: Cast, counter_store: str, three_a_minute: Rate) -> None:
    from readiness.telemetry.models import IngestBatch

    secret, client = token(cast), Client()
    with time_machine.travel(START, tick=False):
        for _ in range(4):
            push(client, secret)
    assert IngestBatch.objects.filter(project=cast.project).count() == 3


def test_each_token_has_its_own_allowance(cast: Cast, counter_store: str, three_a_minute: Rate) -> None:
    busy, quiet, client = token(cast, "busy"), token(cast, "quiet"), Client()
    with time_machine.travel(START, tick=False):
        for _ in range(4):
            push(client, busy)
        assert push(client, busy).status_code == 429
        assert push(client, quiet).status_code == 202


def test_read_endpoints_are_limited_per_token_too(
    cast: Cast, counter_store: str, three_a_minute: Rate
) -> None:
    secret = token(cast)
    client = Client(headers={"Authorization": f"Bearer {secret}"})
    url = f"/api/v1/projects/{cast.project.slug}/"
    with time_machine.travel(START, tick=False):
        assert [client.get(url).status_code for _ in range(4)] == [200, 200, 200, 429]


def test_session_requests_are_not_limited(cast: Cast, counter_store: str, three_a_minute: Rate) -> None:
    client = Client()
    with time_machine.travel(START, tick=False):
        # Logged in on the test's clock too: a session opened on the real clock mixes two clocks.
        client.force_login(cast.member)
        assert {client.get("/api/v1/projects/").status_code for _ in range(5)} == {200}


def test_web_processes_share_one_count_through_redis(
    cast: Cast, settings: Any, private_redis: RedisServer, three_a_minute: Rate
) -> None:
    settings.READINESS_RATE_LIMIT_REDIS_URL = private_redis.url
    secret = token(cast)
    # Each Client loads its own middleware stack: two web processes, as far as the limiter can tell.
    first, second = Client(), Client()
    with time_machine.travel(START, tick=False):
        statuses = [push(first, secret).status_code, push(second, secret).status_code]
        statuses += [push(first, secret).status_code, push(second, secret).status_code]
    assert statuses == [202, 202, 202, 429]
    # Redis holds a hash of the secret, never the secret.
    keys = [key.decode() for key in redis.Redis.from_url(private_redis.url).keys("readiness:ratelimit:*")]
    assert keys and not any(secret in key for key in keys)


def test_a_process_leases_a_slice_of_a_large_allowance_and_the_total_still_holds(
    cast: Cast, settings: Any, private_redis: RedisServer
) -> None:
    # 1,000 a minute: each process leases 10 at a time, one Redis round trip per 10 requests.
    settings.READINESS_RATE_LIMIT_REDIS_URL = private_redis.url
    settings.READINESS_API_RATE_LIMIT = Rate(requests=1000, seconds=60)
    secret = token(cast)
    server = redis.Redis.from_url(private_redis.url)
    processes = [Client(), Client(), Client()]
    pattern = f"readiness:ratelimit:{hashlib.sha256(secret.encode()).hexdigest()}:*"
    with time_machine.travel(START, tick=False):
        assert push(processes[0], secret).status_code == 202
        (key,) = server.keys(pattern)
        assert int(server.get(key)) == 10  # one lease, of which one request is spent
        statuses = [push(processes[n % 3], secret).status_code for n in range(1, 1100)]
    accepted = 1 + statuses.count(202)
    # Never above the limit; below it by at most the unspent leases (under 10 per process).
    assert 1000 - 3 * 9 <= accepted <= 1000
    assert set(statuses) == {202, 429}


def test_without_redis_each_process_counts_alone(cast: Cast, settings: Any, three_a_minute: Rate) -> None:
    settings.READINESS_RATE_LIMIT_REDIS_URL = ""
    secret = token(cast)
    first, second = Client(), Client()
    with time_machine.travel(START, tick=False):
        assert [push(first, secret).status_code for _ in range(4)] == [202, 202, 202, 429]
        assert push(second, secret).status_code == 202


def test_an_unreachable_redis_never_refuses_a_push(cast: Cast, settings: Any, three_a_minute: Rate) -> None:
    # The counter's outage must not become an ingestion outage: the process counts alone meanwhile.
    settings.READINESS_RATE_LIMIT_REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    secret, client = token(cast), Client()
    with time_machine.travel(START, tick=False):
        assert [push(client, secret).status_code for _ in range(4)] == [202, 202, 202, 429]


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("1200/m", Rate(1200, 60)),
        ("20/s", Rate(20, 1)),
        ("100/10s", Rate(100, 10)),
        ("5000/h", Rate(5000, 3600)),
        (" 7 / m ", Rate(7, 60)),
        ("off", None),
    ],
)
def test_rates_are_read_as_requests_per_window(text: str, rate: Rate | None) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["", "fast", "10", "10/d", "0/m", "10/0s", "-1/m", "1.5/s"])
def test_a_malformed_rate_is_refused_with_what_was_expected(text: str) -> None:
    with pytest.raises(ValueError, match="rate"):
        parse_rate(text)
