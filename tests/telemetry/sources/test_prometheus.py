"""query_range against Debian's Prometheus scraping a prometheus_client exporter every second: the
client's range answers are compared with Prometheus' own instant answers at the same timestamps."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from readiness.telemetry.sources.auth import auth_headers
from readiness.telemetry.sources.prometheus import PrometheusError, Series, query_range
from tests.pull_servers import Exporter, PrometheusServer

# The two queries of PRODUCT.md §8's example source.
P99_MS = (
    "histogram_quantile(0.99, sum by (le) "
    '(rate(http_request_duration_seconds_bucket{job="fraud"}[5m]))) * 1000'
)
ERROR_RATE = (
    'sum(rate(http_requests_total{job="fraud",code=~"5.."}[5m])) '
    '/ sum(rate(http_requests_total{job="fraud"}[5m]))'
)
# Every request takes 0.2 s, in the bucket (0.1, 0.25]: the 99th percentile interpolates to
# 0.1 + 0.99 x 0.15 = 0.2485 s whatever the rate; 10 of 100 requests answer 500.
EXPECTED_P99_MS = 248.5
EXPECTED_ERROR_RATE = 0.1


@pytest.fixture(scope="module")
def traffic(prometheus: PrometheusServer, exporter: Exporter) -> datetime:
    """Serves the requests once and returns when: before it, three scrapes of zero counts, so every rate
    there is 0 and both expressions 0/0 = NaN; after it, five scrapes of the new counts."""
    prometheus.wait_for_scrapes(3)
    served_at = datetime.fromtimestamp(math.floor(time.time()), UTC)
    exporter.serve(duration=0.2, code="200", count=90)
    exporter.serve(duration=0.2, code="500", count=10)
    prometheus.wait_for_scrapes(5)
    return served_at


def settled_window(seconds: int) -> tuple[datetime, datetime]:
    """The last ``seconds`` on whole seconds, ending 2 s ago: with a scrape a second, every sample up to
    the end is in the TSDB, so Prometheus gives the same answer for it now and later."""
    end = datetime.fromtimestamp(math.floor(time.time()) - 2, UTC)
    return end - timedelta(seconds=seconds), end


def instant_value(prometheus: PrometheusServer, query: str, at: datetime) -> float | None:
    result = prometheus.instant(query, at=at.timestamp())["data"]["result"]
    assert len(result) <= 1
    return float(result[0]["value"][1]) if result else None


@pytest.mark.parametrize(
    ("query", "expected"),
    [(P99_MS, EXPECTED_P99_MS), (ERROR_RATE, EXPECTED_ERROR_RATE)],
    ids=["p99", "error_rate"],
)
def test_range_values_match_prometheus_own_evaluation_at_each_timestamp(
    client: httpx.Client, prometheus: PrometheusServer, traffic: datetime, query: str, expected: float
) -> None:
    # From before the traffic (NaN there) to now, however long the tests before this one took.
    _, end = settled_window(0)
    start = traffic - timedelta(seconds=5)
    ticks = [start + timedelta(seconds=n) for n in range(int((end - start).total_seconds()) + 1)]

    series = query_range(client, url=prometheus.url, query=query, start=start, end=end, step=1)

    assert len(series) == 1
    assert series[0].labels == {}
    pulled = {sample.ts: sample.value for sample in series[0].samples}
    skipped = 0
    for tick in ticks:
        reference = instant_value(prometheus, query, tick)
        if reference is None or not math.isfinite(reference):
            assert tick not in pulled, f"{tick}: Prometheus says {reference}, pulled {pulled.get(tick)}"
            skipped += reference is not None
        else:
            assert pulled[tick] == pytest.approx(reference, rel=1e-12)
            assert pulled[tick] == pytest.approx(expected, rel=1e-9)
    assert len(pulled) >= 2, "no evaluation after the traffic"
    assert skipped >= 1, "no 0/0 before the traffic: the NaN skipping was not exercised"
    assert set(pulled) <= set(ticks)


def test_series_keep_their_labels_without_the_metric_name(
    client: httpx.Client, prometheus: PrometheusServer, exporter: Exporter, traffic: datetime
) -> None:
    start, end = settled_window(5)

    series = query_range(
        client, url=prometheus.url, query='http_requests_total{job="fraud"}', start=start, end=end, step=1
    )

    by_code = {s.labels["code"]: s for s in series}
    assert set(by_code) == {"200", "500"}
    assert by_code["200"].labels == {"code": "200", "job": "fraud", "instance": exporter.target}
    assert [s.value for s in by_code["200"].samples][-1] == 90
    assert [s.value for s in by_code["500"].samples][-1] == 10


@pytest.mark.parametrize(
    ("query", "kept"),
    [
        ("0 / 0", []),
        # time() % 2 is 0 on even seconds: 0/0 = NaN, 1/0 = +Inf, -1/0 = -Inf there, a number on odd ones.
        ("vector(0) / (vector(time()) % 2)", [0.0] * 5),
        ("vector(1) / (vector(time()) % 2)", [1.0] * 5),
        ("vector(-1) / (vector(time()) % 2)", [-1.0] * 5),
    ],
    ids=["all-nan", "nan", "inf", "minus-inf"],
)
def test_nan_and_infinite_samples_are_skipped(
    client: httpx.Client, prometheus: PrometheusServer, query: str, kept: list[float]
) -> None:
    end = datetime.fromtimestamp(math.floor(time.time()) // 2 * 2, UTC)  # an even second
    start = end - timedelta(seconds=10)

    series = query_range(client, url=prometheus.url, query=query, start=start, end=end, step=1)

    values = [sample.value for s in series for sample in s.samples]
    assert values == kept
    assert all(int(sample.ts.timestamp()) % 2 == 1 for s in series for sample in s.samples)


def test_a_bad_query_surfaces_prometheus_error_text(
    client: httpx.Client, prometheus: PrometheusServer
) -> None:
    query = "sum(rate(http_requests_total[5m])"
    start, end = settled_window(10)
    bounds = {"start": str(start.timestamp()), "end": str(end.timestamp()), "step": "1"}
    reference = prometheus.api("query_range", query=query, **bounds)
    assert reference["status"] == "error"

    with pytest.raises(PrometheusError) as refused:
        query_range(client, url=prometheus.url, query=query, start=start, end=end, step=1)

    assert str(refused.value) == f"query failed (bad_data): {reference['error']}"
    assert "parse error: unclosed left parenthesis" in str(refused.value)


def test_an_http_error_status_is_a_prometheus_error(
    client: httpx.Client, prometheus: PrometheusServer
) -> None:
    start, end = settled_window(10)

    with pytest.raises(PrometheusError, match=r"^HTTP 404 Not Found$"):
        query_range(client, url=f"{prometheus.url}/nowhere", query="up", start=start, end=end, step=1)


def test_an_answer_that_is_not_json_is_a_prometheus_error(client: httpx.Client, exporter: Exporter) -> None:
    # A source pointed at an exporter rather than at Prometheus: 200 with the text exposition format.
    start, end = settled_window(10)

    with pytest.raises(PrometheusError, match="not JSON: is the URL a Prometheus server"):
        query_range(client, url=exporter.url, query="up", start=start, end=end, step=1)


def test_a_stopped_server_is_a_connection_error_and_its_restart_answers_as_before(
    client: httpx.Client, exporter: Exporter
) -> None:
    server = PrometheusServer([exporter.target], job="restarted")
    try:
        server.start()
        server.wait_for_scrapes(8)
        start, end = settled_window(3)
        query = 'up{job="restarted"}'
        before = query_range(client, url=server.url, query=query, start=start, end=end, step=1)
        port = server.port

        server.stop()
        with pytest.raises(PrometheusError, match=r"^connection refused$"):
            query_range(client, url=server.url, query=query, start=start, end=end, step=1)

        server.start()
        after = query_range(client, url=server.url, query=query, start=start, end=end, step=1)
    finally:
        server.destroy()
    assert server.port == port
    assert len(before) == 1 and len(before[0].samples) == 4
    assert after == before


def test_a_server_that_does_not_answer_costs_at_most_the_client_timeout(prometheus: PrometheusServer) -> None:
    start, end = settled_window(10)
    prometheus.pause()
    try:
        with httpx.Client(timeout=1) as client:
            began = time.monotonic()
            with pytest.raises(PrometheusError, match=r"^no answer within 1 s$"):
                query_range(client, url=prometheus.url, query="up", start=start, end=end, step=1)
            elapsed = time.monotonic() - began
    finally:
        prometheus.resume()
    assert elapsed < 2


def test_basic_auth_from_the_environment_opens_a_protected_server(
    client: httpx.Client, exporter: Exporter
) -> None:
    # bcrypt (cost 4, for speed) of "s3cret-for-tests": Prometheus' web config takes only hashes.
    hashed = "$2b$04$RcmagrAHKk.UvqFbnolYlOQk.IM37CDf47.eywCzXWkZOx9L5pqEy"
    server = PrometheusServer([exporter.target], web_config={"basic_auth_users": {"readiness": hashed}})
    auth = {"basic": {"username": "readiness", "password_env": "PROM_PASSWORD"}}
    start, end = settled_window(2)
    try:
        server.start()

        def pull(headers: dict[str, str] | None) -> list[Series]:
            return query_range(
                client, url=server.url, query="vector(7)", start=start, end=end, step=1, headers=headers
            )

        with pytest.raises(PrometheusError, match=r"^HTTP 401 Unauthorized$"):
            pull(None)
        with pytest.raises(PrometheusError, match=r"^HTTP 401 Unauthorized$"):
            pull(auth_headers(auth=auth, environ={"PROM_PASSWORD": "wrong"}))
        series = pull(auth_headers(auth=auth, environ={"PROM_PASSWORD": "s3cret-for-tests"}))
    finally:
        server.destroy()
    assert [sample.value for sample in series[0].samples] == [7.0, 7.0, 7.0]
