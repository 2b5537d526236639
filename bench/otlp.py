"""OTLP/HTTP ingestion against the JSON push, end to end (issue 12's benchmark).

The same points go once as JSON pushes (``POST /api/v1/metrics``) and once as OTLP protobuf exports
(``POST /api/v1/otlp/v1/metrics``: one gauge of 10,000 data points per body, pre-encoded with the
generated OTLP classes, as an SDK's exporter would send them), from 4 keep-alive clients, against
gunicorn and a Celery worker started as deployed (tests/servers.py: the Dockerfile's gunicorn, the
compose file's worker). Each figure is points per second from the first request until every point is
in the metric table; the rounds alternate JSON and OTLP so both see the same machine.

    python bench/otlp.py [--points 200000] [--rounds 3]

Needs PostgreSQL and Redis like bench/ingest.py; creates and drops its own database. Exits non-zero
when OTLP's median rate is under 0.8x the JSON push's.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime as dt
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import BATCH, ROOT, Client, bench_database, bench_token, drop_database, manage, point_count

MIN_RATIO = 0.8
CLIENTS = 4
METRIC = "latency_ms"


def points(n: int, start: int) -> list[tuple[int, float, str]]:
    """(time in ns, value, model_version) of ``n`` points, a millisecond apart, ending now."""
    now_ns = time.time_ns()
    return [(now_ns - i * 1_000_000, float(i % 997) + 0.5, str(i % 5)) for i in range(start, start + n)]


def json_body(batch: list[tuple[int, float, str]]) -> bytes:
    return orjson.dumps(
        {
            "points": [
                {
                    "metric": METRIC,
                    "value": value,
                    "ts": dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).isoformat(),
                    "labels": {"model_version": version},
                }
                for ns, value, version in batch
            ]
        }
    )


def otlp_body(batch: list[tuple[int, float, str]]) -> bytes:
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.metrics.v1.metrics_pb2 import (
        Gauge,
        Metric,
        NumberDataPoint,
        ResourceMetrics,
        ScopeMetrics,
    )

    data_points = [
        NumberDataPoint(
            time_unix_nano=ns,
            as_double=value,
            attributes=[KeyValue(key="model_version", value=AnyValue(string_value=version))],
        )
        for ns, value, version in batch
    ]
    # No service.name on the resource: the OTLP points get the same labels as the JSON ones.
    metric = Metric(name=METRIC, gauge=Gauge(data_points=data_points))
    request = ExportMetricsServiceRequest(
        resource_metrics=[ResourceMetrics(scope_metrics=[ScopeMetrics(metrics=[metric])])]
    )
    return request.SerializeToString()


def request_bytes(path: str, content_type: str, token: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def run(port: int, token: str, requests: list[bytes], db_url: str, expected_status: int) -> float:
    """Send every request from CLIENTS keep-alive clients; points/s until the last point is stored."""
    before = point_count(db_url)
    clients = threading.local()

    def send(request: bytes) -> int:
        if not hasattr(clients, "client"):
            clients.client = Client(port, token)
        return clients.client.post(b"", request)[0]

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
        statuses = list(pool.map(send, requests))
    if set(statuses) != {expected_status}:
        raise RuntimeError(f"unexpected statuses: {sorted(set(statuses))}")
    target = before + len(requests) * BATCH
    deadline = time.monotonic() + 300
    while point_count(db_url) < target:
        if time.monotonic() > deadline:
            raise RuntimeError("the points were not all stored within 300 s")
        time.sleep(0.02)
    return len(requests) * BATCH / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, default=200_000, help="points per round and path")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    batches = max(1, args.points // BATCH)

    db_name = f"readiness_bench_otlp_{os.getpid()}"
    db_url = bench_database(db_name)
    broker = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/14")
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "CELERY_BROKER_URL": broker,
        "DJANGO_DEBUG": "false",
        "READINESS_VAR_DIR": f"/tmp/readiness-bench-{os.getpid()}",
        "LOG_LEVEL": "WARNING",
        "READINESS_API_RATE_LIMIT": os.environ.get("READINESS_API_RATE_LIMIT", "1000000/m"),
    }
    # tests/servers.py reads Django's settings (the Celery app pings the worker): this run's.
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "readiness.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from tests.servers import WebServer, Worker

    stops: list[Callable[[], None]] = []
    try:
        manage(env, "migrate", "--no-input", "-v0")
        token = bench_token(env)
        subprocess.run(["redis-cli", "-u", broker, "FLUSHDB"], check=False, capture_output=True)
        logs = Path(env["READINESS_VAR_DIR"])
        logs.mkdir(parents=True, exist_ok=True)
        worker = Worker(broker, db_url=db_url, log=logs / "worker.log")
        worker.start()
        stops.append(worker.stop)
        worker.wait_ready()
        web = WebServer(env, log=logs / "gunicorn.log")
        web.start()
        stops.append(web.stop)
        print(f"gunicorn {web.workers} workers x {web.threads} threads, worker as compose runs it")

        rates: dict[str, list[float]] = {"json": [], "otlp": []}
        for round_ in range(args.rounds):
            batch_points = [points(BATCH, b * BATCH) for b in range(batches)]
            json_requests = [
                request_bytes("/api/v1/metrics", "application/json", token, json_body(b))
                for b in batch_points
            ]
            otlp_requests = [
                request_bytes("/api/v1/otlp/v1/metrics", "application/x-protobuf", token, otlp_body(b))
                for b in batch_points
            ]
            sizes = (len(json_requests[0]), len(otlp_requests[0]))
            rates["json"].append(run(web.port, token, json_requests, db_url, 202))
            rates["otlp"].append(run(web.port, token, otlp_requests, db_url, 200))
            print(
                f"round {round_ + 1}: JSON {rates['json'][-1]:,.0f} points/s, OTLP {rates['otlp'][-1]:,.0f} "
                f"points/s ({batches} bodies of {BATCH:,} points; {sizes[0]:,} vs {sizes[1]:,} bytes)"
            )
        json_rate, otlp_rate = statistics.median(rates["json"]), statistics.median(rates["otlp"])
        ratio = otlp_rate / json_rate
        print(f"median: JSON push {json_rate:,.0f} points/s, OTLP {otlp_rate:,.0f} points/s")
        print(f"OTLP / JSON push: {ratio:.2f} (required >= {MIN_RATIO})")
        return 0 if ratio >= MIN_RATIO else 1
    finally:
        for stop in reversed(stops):
            stop()
        drop_database(db_name)


if __name__ == "__main__":
    sys.exit(main())
