"""Ingestion benchmark (issue: "close to PostgreSQL's own speed").

One run, all local on this machine: PostgreSQL, Redis, gunicorn (web) and one Celery worker.

1. raw COPY baseline: psycopg 3 COPY of N points straight into the metric table;
2. end to end: the same N points pushed as 10,000-point batches by 4 concurrent HTTP clients, timed
   from the first request until the last point is applied (no batch pending);
3. small pushes: single-point requests from 16 concurrent clients for 20 s: requests/s and p99;
4. peak RSS of the worker process while it applied the 10,000-point batches.

    python bench/ingest.py [--points 400000] [--small-seconds 20]

Needs PostgreSQL (DATABASE_URL's server, default postgres://postgres@127.0.0.1:5432) and Redis
(CELERY_BROKER_URL, default redis://127.0.0.1:6379/14). Creates and drops its own database.
Exits non-zero when a required figure is missed.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime as dt
import io
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

import orjson
import psycopg

COPY_POINTS = "COPY telemetry_metricpoint (project_id, source, metric, ts, value, labels) FROM STDIN"

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
# The benchmarks run Readiness with DJANGO_DEBUG off, as in production, which refuses to start without
# a secret key: a throwaway one for this run (the sibling benchmarks import this module) unless the
# caller set one.
if not (os.environ.get("DJANGO_SECRET_KEY") or os.environ.get("DJANGO_SECRET_KEY_FILE")):
    os.environ["DJANGO_SECRET_KEY"] = secrets.token_urlsafe(50)
BATCH = 10_000

# Required figures (the acceptance bar).
MIN_E2E_RATIO = 0.30
MIN_SMALL_RPS = 500
MAX_SMALL_P99_MS = 100
MAX_WORKER_RSS_MB = 300


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_url() -> str:
    url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, "/postgres", "", ""))


def bench_database(name: str) -> str:
    admin = server_url()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin.rsplit("/", 1)[0] + f"/{name}"


def drop_database(name: str) -> None:
    with psycopg.connect(server_url(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return result.stdout


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def make_points(n: int, start: int = 0) -> list[dict[str, object]]:
    now = dt.datetime.now(dt.UTC)
    return [
        {
            "metric": "latency_ms",
            "value": float(i % 997) + 0.5,
            "ts": (now - dt.timedelta(milliseconds=i)).isoformat(),
            "labels": {"model_version": str(i % 5)},
        }
        for i in range(start, start + n)
    ]


def raw_copy(db_url: str, project_id: int, n: int) -> float:
    """The machine's limit: COPY straight into the same table, same columns and indexes."""
    now = dt.datetime.now(dt.UTC)
    buf = io.StringIO()
    for i in range(n):
        ts = (now - dt.timedelta(milliseconds=i)).isoformat()
        labels = f'{{"model_version":"{i % 5}"}}'
        buf.write(f"{project_id}\tpush:bench\tlatency_ms\t{ts}\t{float(i % 997) + 0.5}\t{labels}\n")
    data = buf.getvalue().encode()
    with psycopg.connect(db_url) as conn:
        started = time.perf_counter()
        with (
            conn.cursor() as cur,
            cur.copy(COPY_POINTS) as copy,
        ):
            for offset in range(0, len(data), 1 << 20):
                copy.write(data[offset : offset + (1 << 20)])
        conn.commit()
        elapsed = time.perf_counter() - started
        conn.execute("TRUNCATE telemetry_metricpoint")
        conn.commit()
    return n / elapsed


class Client:
    """A lean HTTP/1.1 client on a raw socket: a prebuilt request, keep-alive when the server allows.

    The load generator shares this machine's two cores with the server, so it must cost far less
    than a push does; http.client (headers parsed through the email package) cost about as much.
    """

    def __init__(self, port: int, token: str) -> None:
        self.port, self.token = port, token
        self.sock: socket.socket | None = None

    def request_bytes(self, body: bytes) -> bytes:
        head = (
            f"POST /api/v1/metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {self.token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body

    def post(self, body: bytes, request: bytes | None = None) -> tuple[int, float]:
        request = request or self.request_bytes(body)
        started = time.perf_counter()
        for attempt in (1, 2):
            try:
                if self.sock is None:
                    self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=60)
                self.sock.sendall(request)
                status, close = self._read_response()
                break
            except OSError:
                self.close()  # a kept-alive connection the server closed: reconnect once
                if attempt == 2:
                    raise
        if close:
            self.close()
        return status, time.perf_counter() - started

    def _read_response(self) -> tuple[int, bool]:
        assert self.sock is not None
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionResetError("closed before a response")
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length", "0"))
        while len(rest) < length:
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            rest += chunk
        return status, headers.get("connection", "").lower() == "close"

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def pending_batches(db_url: str) -> int:
    with psycopg.connect(db_url) as conn:
        return conn.execute("SELECT count(*) FROM telemetry_ingestbatch WHERE state = 'pending'").fetchone()[
            0
        ]


def point_count(db_url: str) -> int:
    with psycopg.connect(db_url) as conn:
        return conn.execute("SELECT count(*) FROM telemetry_metricpoint").fetchone()[0]


class RssWatcher(threading.Thread):
    """Samples the peak RSS (VmHWM) of a process tree's members."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak_kb, self.stopped = pid, 0, threading.Event()

    def pids(self) -> list[int]:
        found = [self.pid]
        try:
            children = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text().split()
            found += [int(c) for c in children]
        except OSError:
            pass
        return found

    def run(self) -> None:
        while not self.stopped.is_set():
            for pid in self.pids():
                try:
                    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                        if line.startswith("VmHWM:"):
                            self.peak_kb = max(self.peak_kb, int(line.split()[1]))
                except OSError:
                    continue
            time.sleep(0.05)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, default=400_000, help="N for the COPY and end-to-end runs")
    parser.add_argument("--small-seconds", type=float, default=20.0)
    parser.add_argument("--web-workers", type=int, default=3)
    parser.add_argument("--web-threads", type=int, default=4, help="gunicorn gthread threads per worker")
    args = parser.parse_args()
    n = args.points - args.points % BATCH

    db_name = f"readiness_bench_{os.getpid()}"
    db_url = bench_database(db_name)
    broker = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/14")
    var_dir = Path(f"/tmp/readiness-bench-{os.getpid()}")
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "CELERY_BROKER_URL": broker,
        "DJANGO_DEBUG": "false",
        "READINESS_VAR_DIR": str(var_dir),
        "LOG_LEVEL": "WARNING",
        # The per-token rate limit stays on the path (its Redis round trip is in every figure), set
        # high enough that the one bench token may push as fast as the server goes.
        "READINESS_API_RATE_LIMIT": os.environ.get("READINESS_API_RATE_LIMIT", "1000000/m"),
    }
    processes: list[subprocess.Popen[bytes]] = []
    try:
        manage(env, "migrate", "--no-input", "-v0")
        setup = (
            "from readiness.projects.models import Project, Team;"
            "from readiness.projects.services import token_create;"
            "t=Team.objects.create(slug='bench', name='Bench');"
            "p=Project.objects.create(slug='bench', name='Bench', team=t, stage='pilot');"
            "print(p.pk, token_create(project=p, name='bench', scopes=['metrics:write'])[1])"
        )
        project_id, token = manage(env, "shell", "-c", setup).strip().splitlines()[-1].split()
        subprocess.run(["redis-cli", "-u", broker, "FLUSHDB"], check=False, capture_output=True)

        copy_rate = raw_copy(db_url, int(project_id), n)
        print(f"raw COPY baseline:   {n:,} points at {copy_rate:,.0f} points/s")

        port = free_port()
        processes.append(
            subprocess.Popen(
                [
                    PYTHON,
                    "-m",
                    "gunicorn",
                    "readiness.wsgi:application",
                    "--bind",
                    f"127.0.0.1:{port}",
                    "--workers",
                    str(args.web_workers),
                    "--log-level",
                    "warning",
                ],
                cwd=ROOT,
                env=env,
            )
        )
        worker = subprocess.Popen(
            [
                PYTHON,
                "-m",
                "celery",
                "-A",
                "readiness",
                "worker",
                "--pool=solo",
                "--loglevel=WARNING",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            cwd=ROOT,
            env=env,
        )
        processes.append(worker)
        wait_port(port)
        time.sleep(3)  # let the worker connect before the clock starts

        bodies = [orjson.dumps({"points": make_points(BATCH, b * BATCH)}) for b in range(n // BATCH)]
        rss = RssWatcher(worker.pid)
        rss.start()
        started = time.perf_counter()
        clients = threading.local()

        def push_big(body: bytes) -> int:
            if not hasattr(clients, "client"):
                clients.client = Client(port, token)
            return clients.client.post(body)[0]

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            statuses = list(pool.map(push_big, bodies))
        pushed = time.perf_counter() - started
        if set(statuses) != {202}:
            raise RuntimeError(f"unexpected statuses {sorted(set(statuses))}")
        while pending_batches(db_url):
            time.sleep(0.02)
        e2e = time.perf_counter() - started
        rss.stopped.set()
        stored = point_count(db_url)
        if stored != n:
            raise RuntimeError(f"stored {stored:,} points, pushed {n:,}")
        e2e_rate = n / e2e
        ratio = e2e_rate / copy_rate
        print(
            f"end to end:          {n:,} points in {e2e:.2f} s = {e2e_rate:,.0f} points/s "
            f"(all 202 after {pushed:.2f} s); ratio to raw COPY {ratio:.2f} (required >= {MIN_E2E_RATIO})"
        )
        rss_mb = rss.peak_kb / 1024
        print(f"worker peak RSS:     {rss_mb:.0f} MB (required < {MAX_WORKER_RSS_MB})")

        small = orjson.dumps({"points": [{"metric": "requests", "value": 1.0}]})
        latencies: list[float] = []
        lock = threading.Lock()
        deadline = time.perf_counter() + args.small_seconds
        errors = [0]

        def client() -> None:
            http_client = Client(port, token)
            request = http_client.request_bytes(small)
            while time.perf_counter() < deadline:
                status, seconds = http_client.post(small, request)
                with lock:
                    if status == 202:
                        latencies.append(seconds)
                    else:
                        errors[0] += 1

        small_started = time.perf_counter()
        threads = [threading.Thread(target=client) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - small_started
        rps = len(latencies) / elapsed
        p99 = statistics.quantiles(latencies, n=100)[98] * 1000
        p50 = statistics.median(latencies) * 1000
        print(
            f"small pushes:        {len(latencies):,} requests in {elapsed:.1f} s = {rps:,.0f} requests/s, "
            f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, {errors[0]} errors "
            f"(required >= {MIN_SMALL_RPS}/s, p99 <= {MAX_SMALL_P99_MS} ms)"
        )
        failures = []
        if ratio < MIN_E2E_RATIO:
            failures.append(f"end-to-end ratio {ratio:.2f} < {MIN_E2E_RATIO}")
        if rps < MIN_SMALL_RPS:
            failures.append(f"small pushes {rps:.0f}/s < {MIN_SMALL_RPS}/s")
        if p99 > MAX_SMALL_P99_MS:
            failures.append(f"small-push p99 {p99:.1f} ms > {MAX_SMALL_P99_MS} ms")
        if rss_mb >= MAX_WORKER_RSS_MB:
            failures.append(f"worker RSS {rss_mb:.0f} MB >= {MAX_WORKER_RSS_MB} MB")
        if errors[0]:
            failures.append(f"{errors[0]} small pushes were not accepted")
        for failure in failures:
            print(f"MISSED: {failure}")
        return 1 if failures else 0
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        drop_database(db_name)


if __name__ == "__main__":
    sys.exit(main())
