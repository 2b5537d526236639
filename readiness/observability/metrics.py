"""Readiness's own Prometheus metrics, and the one-line calls the code paths make to move them.

Every process (gunicorn workers, Celery worker children, beat) counts into its own values. With
``PROMETHEUS_MULTIPROC_DIR`` set, prometheus_client keeps them in memory-mapped files in that folder,
and a scrape of any web process sums the files of every process sharing the folder, the worker's
included (docker-compose.yml mounts one volume into web, worker and beat for this). Without it, a
scrape sees only the process that answers it: right for one process, as in the tests.

Labels are kept to small, fixed sets (view names, status codes, outcomes): a label fed from user input
(a path, a project slug, a metric name) would let any caller grow the series without bound.
"""

from __future__ import annotations

import os
import re
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
    values,
)
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import REGISTRY, Collector

MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))

if MULTIPROCESS:
    # prometheus_client names each process's file after its pid. Containers sharing the folder (web
    # and worker replicas on one volume) reuse pids, so two processes would write one file: name the
    # files after host and pid instead. The host name is a container's id; "_" separates the parts
    # of a file name, so it must not appear in the identifier.
    _HOST = re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname()) or "host"
    values.ValueClass = values.MultiProcessValue(lambda: f"{_HOST}-{os.getpid()}")

# No "<name>_created" series beside every counter: Prometheus does not need them and they double the
# series a scrape carries.
disable_created_metrics()

# Whole-request latency, from the outermost middleware: a push answers in a few milliseconds, a
# scorecard page in tens, an import in seconds.
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# An evaluation reads windowed aggregates of every criterion: tens of milliseconds to seconds.
EVALUATION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

HTTP_REQUESTS = Counter(
    "readiness_http_requests",
    "HTTP requests answered, by view name, method and status code.",
    ["view", "method", "status"],
)
HTTP_REQUEST_SECONDS = Histogram(
    "readiness_http_request_duration_seconds",
    "Time to answer an HTTP request, by view name.",
    ["view"],
    buckets=REQUEST_BUCKETS,
)
INGEST_BATCHES = Counter(
    "readiness_ingest_batches_processed",
    "Accepted metric batches applied to the metric table by a worker.",
)
INGEST_POINTS = Counter(
    "readiness_ingest_points_processed",
    "Metric points applied to the metric table by a worker.",
)
EVALUATION_SECONDS = Histogram(
    "readiness_evaluation_duration_seconds",
    "Time to evaluate a project and store its scorecard (scorecard_refresh).",
    buckets=EVALUATION_BUCKETS,
)
PROBES = Counter(
    "readiness_probes",
    "Health-check probes run, by outcome (up or down).",
    ["outcome"],
)
NOTIFICATION_FAILURES = Counter(
    "readiness_notification_failures",
    "Notifications a channel failed to deliver, by channel kind and failure: transient (it will be "
    "retried), permanent (the channel was disabled) or uncertain (an email that may have left with a "
    "worker that died; not sent again, a person checks).",
    ["channel", "failure"],
)

# The methods Django answers; anything else is counted as "other" so a client cannot mint series.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def record_request(*, view: str, method: str, status: int, seconds: float) -> None:
    HTTP_REQUESTS.labels(view, method if method in KNOWN_METHODS else "other", str(status)).inc()
    HTTP_REQUEST_SECONDS.labels(view).observe(seconds)


def record_batches_applied(*, batches: int, points: int) -> None:
    INGEST_BATCHES.inc(batches)
    INGEST_POINTS.inc(points)


@contextmanager
def evaluation_timer() -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        EVALUATION_SECONDS.observe(time.perf_counter() - started)


def record_probe_outcomes(*, up: int, down: int) -> None:
    if up:
        PROBES.labels("up").inc(up)
    if down:
        PROBES.labels("down").inc(down)


def record_notification_failure(*, channel: str, failure: str) -> None:
    """Count one failed delivery; ``channel`` is the channel's kind (``email``, ``webhook``), ``failure``
    ``transient``, ``permanent`` or ``uncertain``."""
    NOTIFICATION_FAILURES.labels(channel, failure).inc()


# Gauges read at each scrape, added at start by the apps that own the rows they count (the ingest
# backlog: TelemetryConfig.ready). Observability is the lowest layer and imports none of those apps.
SCRAPE_TIME_COLLECTORS: list[Collector] = []


def scrape_time_collector_add(collector: Collector) -> None:
    SCRAPE_TIME_COLLECTORS.append(collector)


def metrics_exposition() -> bytes:
    """The Prometheus text exposition of every process's metrics plus the scrape-time gauges."""
    if MULTIPROCESS:
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        process_metrics = generate_latest(registry)
    else:
        process_metrics = generate_latest(REGISTRY)
    scrape_time = CollectorRegistry()
    for collector in SCRAPE_TIME_COLLECTORS:
        scrape_time.register(collector)
    return process_metrics + generate_latest(scrape_time)
