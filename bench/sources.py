"""Pull-cycle benchmark (issue 13: "200 Prometheus sources x 3 queries against one real Prometheus: one
pull cycle's wall time and worker CPU; goal: a cycle <= 10 s and <= 20% of one core at a 60 s
interval").

All local: PostgreSQL (a database of its own, created and dropped here), Debian's Prometheus scraping
a prometheus_client exporter in a child process every second, with one service per source (a latency
histogram and requests by code: about 3,000 series in all), and the configured broker. Each of the 200
projects has one source (interval 60 s) with three queries on its own service: p99 latency, error
rate, throughput. A cycle is ``pulls_run`` as the Celery task runs it: claim the due sources, read
them ``READINESS_PULL_CONCURRENCY`` at once, store their points. Three cycles are measured (before
each, the sources are made due again and their points removed, so each does the whole work); CPU is
this process's (every reading thread included) during the cycle.

    python bench/sources.py [--sources 200] [--concurrency 20]

Exits non-zero when a cycle exceeds 10 s, its CPU exceeds 20% of a core over the 60 s interval
(12 s), or a source fails or stores other than its three points.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from ingest import bench_database, drop_database  # noqa: E402 -- the same throwaway-database helpers

PYTHON = sys.executable
INTERVAL = 60
MAX_WALL = 10.0
MAX_CORE_SHARE = 0.20
CYCLES = 3
QUERIES = {
    "latency_ms": "histogram_quantile(0.99, sum by (le) "
    '(rate(http_request_duration_seconds_bucket{{service="{service}"}}[5m]))) * 1000',
    "error_rate": 'sum(rate(http_requests_total{{service="{service}",code=~"5.."}}[5m])) '
    '/ sum(rate(http_requests_total{{service="{service}"}}[5m]))',
    "throughput": 'sum(rate(http_requests_total{{service="{service}"}}[5m]))',
}


def exporter_main(services: int, port: int) -> None:
    """The child process: every 0.5 s, each service answers 19 requests with 200 and one with 500."""
    from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

    registry = CollectorRegistry()
    duration = Histogram(
        "http_request_duration_seconds",
        "Time to answer",
        ["service"],
        buckets=(0.1, 0.25, 0.5, 1.0),
        registry=registry,
    )
    requests = Counter("http_requests_total", "Requests", ["service", "code"], registry=registry)
    start_http_server(port, addr="127.0.0.1", registry=registry)
    print("ready", flush=True)
    while True:
        for index in range(services):
            service = f"svc-{index}"
            for _ in range(20):
                duration.labels(service=service).observe(0.2)
            requests.labels(service=service, code="200").inc(19)
            requests.labels(service=service, code="500").inc(1)
        time.sleep(0.5)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sources", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--exporter", type=int, help=argparse.SUPPRESS)  # the child process's port
    args = parser.parse_args()
    if args.exporter:
        exporter_main(args.sources, args.exporter)
        return 0

    from tests.pull_servers import PrometheusServer
    from tests.servers import free_port

    db_name = f"readiness_bench_sources_{os.getpid()}"
    db_url = bench_database(db_name)
    os.environ.update(
        {
            "DATABASE_URL": db_url,
            "CELERY_BROKER_URL": os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/14"),
            "READINESS_VAR_DIR": f"/tmp/readiness-bench-sources-{os.getpid()}",
            "READINESS_PULL_CONCURRENCY": str(args.concurrency),
            "DJANGO_SETTINGS_MODULE": "readiness.settings",
            "LOG_LEVEL": "WARNING",
        }
    )
    port = free_port()
    exporter = subprocess.Popen(
        [PYTHON, __file__, "--sources", str(args.sources), "--exporter", str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    prometheus = None
    try:
        assert exporter.stdout is not None and exporter.stdout.readline().strip() == "ready"
        prometheus = PrometheusServer([f"127.0.0.1:{port}"])
        prometheus.start()
        subprocess.run(
            [PYTHON, "manage.py", "migrate", "--no-input", "-v0"], cwd=ROOT, check=True, env=os.environ
        )
        import django

        django.setup()
        from django.utils import timezone

        from readiness.celery import app
        from readiness.projects.models import Project, Team
        from readiness.telemetry.models import MetricPoint, MetricSource
        from readiness.telemetry.pulls import pulls_run

        team = Team.objects.create(slug="bench", name="Bench")
        for index in range(args.sources):
            project = Project.objects.create(slug=f"bench-{index}", name=f"Bench {index}", team=team)
            MetricSource.objects.create(
                project=project,
                name="prod-prometheus",
                kind="prometheus",
                url=prometheus.url,
                interval=INTERVAL,
                queries={metric: query.format(service=f"svc-{index}") for metric, query in QUERIES.items()},
            )
        # Enough scrapes for every rate: the newest settled grid timestamp must follow traffic.
        prometheus.wait_for_scrapes(3)
        series = len(prometheus.api("series", **{"match[]": '{job="fraud"}'})["data"])
        settle_until = (int(time.time()) // INTERVAL + 1) * INTERVAL + 11
        time.sleep(max(0.0, settle_until - time.time()))

        failures = []
        walls, cpus = [], []
        for cycle in range(1, CYCLES + 1):
            MetricPoint.objects.all().delete()
            MetricSource.objects.update(next_pull_at=timezone.now(), pulled_until={})
            app.control.purge()
            wall_started, cpu_started = time.perf_counter(), time.process_time()
            report = pulls_run()
            wall, cpu = time.perf_counter() - wall_started, time.process_time() - cpu_started
            walls.append(wall)
            cpus.append(cpu)
            stored = MetricPoint.objects.count()
            print(
                f"cycle {cycle}: {report.pulled} sources x {len(QUERIES)} queries in {wall:.2f} s wall, "
                f"{cpu:.2f} s CPU ({cpu / INTERVAL:.1%} of a core at a {INTERVAL} s interval); "
                f"{report.failed} failed, {stored} points stored; reads {report.reading:.2f} s, "
                f"pull {report.seconds:.2f} s"
            )
            if report.pulled != args.sources or report.failed or stored != args.sources * len(QUERIES):
                failures.append(f"cycle {cycle}: {report}")
        app.control.purge()  # the re-evaluations the cycles requested: no worker here to take them
        print(f"Prometheus series scraped: {series:,}; concurrency {args.concurrency}")
        print(
            f"worst cycle: {max(walls):.2f} s wall (goal <= {MAX_WALL:g} s), {max(cpus):.2f} s CPU = "
            f"{max(cpus) / INTERVAL:.1%} of a core (goal <= {MAX_CORE_SHARE:.0%})"
        )
        if max(walls) > MAX_WALL:
            failures.append(f"a cycle took {max(walls):.2f} s")
        if max(cpus) / INTERVAL > MAX_CORE_SHARE:
            failures.append(f"a cycle used {max(cpus):.2f} s of CPU")
        for failure in failures:
            print(f"FAILED: {failure}")
        return 1 if failures else 0
    finally:
        if prometheus is not None:
            prometheus.destroy()
        exporter.kill()
        exporter.wait()
        from django.db import connections

        connections.close_all()
        drop_database(db_name)


if __name__ == "__main__":
    sys.exit(main())
