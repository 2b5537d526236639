"""Ingestion benchmark: the push path as deployed, on this machine's PostgreSQL and Redis.

The stack runs as the deployment files run it (read from them by tests/servers.py): gunicorn with the
Dockerfile's CMD and gunicorn.conf.py (gthread; WEB_WORKERS and WEB_THREADS change its processes and
threads as they do in production) and the Celery worker as the Procfile runs it
(prefork, beat inside it), on a throwaway database.

1. raw COPY baseline: psycopg 3 COPY of N points straight into the metric table;
2. end to end: the same N points pushed as 10,000-point batches by 4 concurrent HTTP clients, timed
   from the first request until the last point is applied (no batch pending); ratio to the baseline;
3. peak RSS of a worker process while the worker applied those batches;
4. single-point pushes from wrk (16 connections, 30 s, bench/single_point_push.lua: each request one
   point with its own value and ts; written by the request itself, the worker only evaluates):
   requests/s, p50 and p99 latency, every non-2xx answer and socket error, the CPU the worker and the
   web processes used meanwhile, then every accepted point stored exactly once (waited for, at most
   --store-timeout seconds).

    python bench/ingest.py [--points 400000] [--seconds 30] [--connections 16] [--store-timeout 120]
                           [--pushes-only]

Needs PostgreSQL (DATABASE_URL's server, default postgres://postgres@127.0.0.1:5432), Redis
(CELERY_BROKER_URL, default redis://127.0.0.1:6379/14, flushed) and wrk (Debian's package). Creates and
drops its own database. Exits non-zero when a required figure is missed or a wait times out.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import datetime as dt
import io
import os
import re
import resource
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path

import orjson
import psycopg

COPY_POINTS = "COPY telemetry_metricpoint (project_id, source, metric, ts, value, labels) FROM STDIN"

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# The servers exactly as the deployment files run them, the launcher the fault suite uses too.
from tests.servers import PROCFILE, WebServer, Worker  # noqa: E402

PYTHON = sys.executable
# The benchmarks run Readiness with DJANGO_DEBUG off, as in production, which refuses to start without
# a secret key: a throwaway one for this run (the sibling benchmarks import this module) unless the
# caller set one.
if not (os.environ.get("DJANGO_SECRET_KEY") or os.environ.get("DJANGO_SECRET_KEY_FILE")):
    os.environ["DJANGO_SECRET_KEY"] = secrets.token_urlsafe(50)
BATCH = 10_000
WRK_SCRIPT = ROOT / "bench" / "single_point_push.lua"
PUSH_METRIC = "bench.push"  # the metric the wrk script pushes
# wrk's threads: one per core of the machine the figures are quoted for; the connections are shared.
WRK_THREADS = 2
TICKS = os.sysconf("SC_CLK_TCK")

# Required figures (the ingestion issue's acceptance bar; single-point pushes: issue 14's, since they
# are written by the request itself).
MIN_E2E_RATIO = 0.30
MIN_SMALL_RPS = 600
MAX_SMALL_P99_MS = 50
MAX_WORKER_RSS_MB = 300


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
    # Bounded, like every wait of the benchmarks: a locked database fails the run instead of hanging it.
    result = subprocess.run(
        [PYTHON, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    return result.stdout


def bench_token(env: dict[str, str]) -> str:
    """A pilot project "bench" and its metrics:write token, made by the product's own services in
    the benchmark's database; returns the token's secret."""
    setup = (
        "from readiness.projects.models import Project, Team;"
        "from readiness.projects.services import token_create;"
        "t=Team.objects.create(slug='bench', name='Bench');"
        "p=Project.objects.create(slug='bench', name='Bench', team=t, stage='pilot');"
        "print(token_create(project=p, name='bench', scopes=['metrics:write'])[1])"
    )
    return manage(env, "shell", "-c", setup).strip().splitlines()[-1]


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


class BenchFailed(Exception):
    """A wait that timed out or a run that cannot go on: the message says which."""


def query_one(db_url: str, sql: str, *params: object) -> tuple[int, ...]:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(sql, params).fetchone()
    assert row is not None
    return tuple(row)


def point_count(db_url: str) -> int:
    """Every metric point stored, whatever its project and metric (bench/otlp.py waits on it)."""
    return query_one(db_url, "SELECT count(*) FROM telemetry_metricpoint")[0]


def wait_until(predicate: Callable[[], bool], *, timeout: float, what: str) -> float:
    """Poll ``predicate`` until true; the seconds it took. Raises BenchFailed after ``timeout``, so a
    stuck pipeline fails the run instead of hanging it."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise BenchFailed(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)
    return time.monotonic() - started


def unapplied(db_url: str) -> int:
    """Batches not applied yet (pending, or set aside as failed, which a run must not have)."""
    return query_one(db_url, "SELECT count(*) FROM telemetry_ingestbatch WHERE state <> 'done'")[0]


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (a prefork worker's pool and beat, gunicorn's workers)."""
    found, index = [pid], 0
    while index < len(found):
        current = found[index]
        # A process that ended meanwhile has no children to add.
        with contextlib.suppress(OSError):
            found += [int(c) for c in Path(f"/proc/{current}/task/{current}/children").read_text().split()]
        index += 1
    return found


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of live processes, from /proc."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICKS


def machine_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, every core summed (/proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / TICKS, sum(fields[:8]) / TICKS


class RssWatcher(threading.Thread):
    """Samples the peak RSS (VmHWM) of the largest process in a process tree."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak_kb, self.stopped = pid, 0, threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            for pid in process_tree(self.pid):
                try:
                    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                        if line.startswith("VmHWM:"):
                            self.peak_kb = max(self.peak_kb, int(line.split()[1]))
                except OSError:
                    continue
            time.sleep(0.05)


def end_to_end(
    db_url: str, port: int, token: str, worker_pid: int, n: int, timeout: float
) -> tuple[float, float, float]:
    """Push N points as 10,000-point batches from 4 clients and wait until all are applied: returns
    (seconds until the last point was applied, seconds until the last 202, the worker's peak RSS MB)."""
    bodies = [orjson.dumps({"points": make_points(BATCH, b * BATCH)}) for b in range(n // BATCH)]
    rss = RssWatcher(worker_pid)
    rss.start()
    clients = threading.local()

    def push_big(body: bytes) -> int:
        if not hasattr(clients, "client"):
            clients.client = Client(port, token)
        return clients.client.post(body)[0]

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(push_big, bodies))
    pushed = time.perf_counter() - started
    if set(statuses) != {202}:
        raise BenchFailed(f"10,000-point batches answered {sorted(set(statuses))}, expected only 202")
    wait_until(
        lambda: unapplied(db_url) == 0,
        timeout=timeout,
        what="the 10,000-point batches to be applied",
    )
    seconds = time.perf_counter() - started
    rss.stopped.set()
    stored = query_one(db_url, "SELECT count(*) FROM telemetry_metricpoint WHERE metric = 'latency_ms'")[0]
    if stored != n:
        raise BenchFailed(f"stored {stored:,} points of the batches, pushed {n:,}")
    return seconds, pushed, rss.peak_kb / 1024


RESULT_LINE = re.compile(r"^result (.*)$", re.MULTILINE)


def run_wrk(port: int, token: str, *, seconds: float, connections: int) -> tuple[dict[str, int], str, float]:
    """wrk's single-point pushes: the figures its script printed, the command, and its CPU seconds."""
    command = [
        "wrk",
        f"-t{WRK_THREADS}",
        f"-c{connections}",
        f"-d{seconds:g}s",
        # A request unanswered for 10 s counts as a timeout error (wrk's default is 2 s).
        "--timeout",
        "10s",
        "-s",
        str(WRK_SCRIPT),
        f"http://127.0.0.1:{port}/api/v1/metrics",
        "--",
        token,
        str(int(time.time() * 1000)),
        str(WRK_THREADS),
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=False)
    except subprocess.TimeoutExpired:
        raise BenchFailed(f"wrk did not end within {seconds + 60:.0f} s") from None
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise BenchFailed(f"wrk exited {result.returncode}: {result.stderr.strip() or result.stdout}")
    figures: dict[str, int] = {}
    for line in RESULT_LINE.findall(result.stdout):
        for pair in line.split():
            key, _, value = pair.partition("=")
            figures[key] = int(value)
    if "requests" not in figures:
        raise BenchFailed(f"wrk printed no result:\n{result.stdout}{result.stderr}")
    shown = " ".join([*command[:-3], "<token>", "<start ms>", command[-1]])
    wrk_cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return figures, shown.replace(str(ROOT) + "/", ""), wrk_cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, default=400_000, help="N for the COPY and end-to-end runs")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long wrk pushes single points")
    parser.add_argument("--connections", type=int, default=16, help="wrk's connections")
    parser.add_argument(
        "--store-timeout", type=float, default=120.0, help="seconds to wait for accepted points to be stored"
    )
    parser.add_argument(
        "--pushes-only",
        action="store_true",
        help="only the single-point pushes (no raw COPY, no end to end): for quick pairs",
    )
    args = parser.parse_args()
    n = args.points - args.points % BATCH
    if n <= 0 or args.seconds <= 0 or args.connections < WRK_THREADS:
        parser.error(f"need --points >= {BATCH:,}, --seconds > 0 and --connections >= {WRK_THREADS}")
    if shutil.which("wrk") is None:
        parser.error("wrk is not installed (Debian: apt-get install wrk)")

    db_name = f"readiness_bench_{os.getpid()}"
    db_url = bench_database(db_name)
    broker = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/14")
    var_dir = Path(tempfile.mkdtemp(prefix="readiness-bench-ingest-"))
    # This process's environment is the servers' (tests/servers.py hands os.environ to them), and its
    # Celery app pings the worker on the same broker.
    os.environ.update(
        DATABASE_URL=db_url,
        CELERY_BROKER_URL=broker,
        DJANGO_DEBUG="false",
        READINESS_VAR_DIR=str(var_dir),
        LOG_LEVEL="WARNING",
        # The per-token rate limit stays on the path (its Redis round trips are in every figure), set
        # high enough that the one bench token may push as fast as the server goes.
        READINESS_API_RATE_LIMIT=os.environ.get("READINESS_API_RATE_LIMIT", "1000000/m"),
    )
    web = WebServer(dict(os.environ), log=var_dir / "gunicorn.log")
    worker = Worker(broker, db_url=db_url, log=var_dir / "worker.log", deployment=PROCFILE)
    status = 1
    try:
        status = run(args, n, db_url, broker, web, worker)
    except BenchFailed as exc:
        print(f"FAILED: {exc}")
    finally:
        web.stop()
        worker.stop()
        drop_database(db_name)
        # The servers' logs are kept for a run that failed or missed a figure.
        if status == 0:
            shutil.rmtree(var_dir, ignore_errors=True)
        else:
            print(f"logs of gunicorn and the worker: {var_dir}")
    return status


def run(args: argparse.Namespace, n: int, db_url: str, broker: str, web: WebServer, worker: Worker) -> int:
    manage(dict(os.environ), "migrate", "--no-input", "-v0")
    setup = (
        "from readiness.projects.models import Project, Team;"
        "from readiness.projects.services import token_create;"
        "t=Team.objects.create(slug='bench', name='Bench');"
        "p=Project.objects.create(slug='bench', name='Bench', team=t, stage='pilot');"
        "print(p.pk, token_create(project=p, name='bench', scopes=['metrics:write'])[1])"
    )
    project_id, token = manage(dict(os.environ), "shell", "-c", setup).strip().splitlines()[-1].split()
    subprocess.run(["redis-cli", "-u", broker, "FLUSHDB"], check=False, capture_output=True)
    print("load average at start: {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()))

    if not args.pushes_only:
        copy_rate = raw_copy(db_url, int(project_id), n)
        print(f"raw COPY baseline:   {n:,} points at {copy_rate:,.0f} points/s")

    worker.start()
    web.start()
    worker.wait_ready()
    assert worker.process is not None and web.process is not None
    print(
        f"stack: gunicorn {' '.join(web.arguments)} (gunicorn.conf.py: {web.workers} processes x "
        f"{web.threads} threads); celery {' '.join(worker.arguments())} "
        f"(worker with beat inside, as the Procfile runs it)"
    )

    ratio: float | None = None  # unmeasured with --pushes-only
    rss_mb: float | None = None
    if not args.pushes_only:
        e2e, pushed, rss_mb = end_to_end(db_url, web.port, token, worker.process.pid, n, args.store_timeout)
        e2e_rate = n / e2e
        ratio = e2e_rate / copy_rate
        print(
            f"end to end:          {n:,} points in {e2e:.2f} s = {e2e_rate:,.0f} points/s "
            f"(all 202 after {pushed:.2f} s); ratio to raw COPY {ratio:.2f} (required >= {MIN_E2E_RATIO})"
        )
        print(f"worker peak RSS:     {rss_mb:.0f} MB (required < {MAX_WORKER_RSS_MB})")

    batches_before = query_one(db_url, "SELECT count(*) FROM telemetry_ingestbatch")[0]
    worker_pids, web_pids = process_tree(worker.process.pid), process_tree(web.process.pid)
    cpu_before = cpu_seconds(worker_pids), cpu_seconds(web_pids), machine_busy_seconds()
    wall_started = time.perf_counter()
    figures, command, wrk_cpu = run_wrk(web.port, token, seconds=args.seconds, connections=args.connections)
    wall = time.perf_counter() - wall_started
    worker_cpu = cpu_seconds(worker_pids) - cpu_before[0]
    web_cpu = cpu_seconds(web_pids) - cpu_before[1]
    busy, total = (now - then for now, then in zip(machine_busy_seconds(), cpu_before[2], strict=True))
    cores = total / wall

    requests, non2xx = figures["requests"], figures["non2xx"]
    socket_errors = sum(figures[key] for key in ("connect", "read", "write", "timeout"))
    accepted = requests - non2xx
    rps = requests / (figures["duration_us"] / 1e6)
    p50, p99 = figures["p50_us"] / 1000, figures["p99_us"] / 1000
    statuses = ", ".join(
        f"{k.removeprefix('status_')}: {v}" for k, v in figures.items() if k.startswith("status_")
    )
    print(f"single-point pushes: {command}")
    print(
        f"  {requests:,} requests in {figures['duration_us'] / 1e6:.1f} s = {rps:,.0f} requests/s, "
        f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {figures['max_us'] / 1000:.0f} ms "
        f"(required >= {MIN_SMALL_RPS}/s, p99 <= {MAX_SMALL_P99_MS} ms)"
    )
    print(
        f"  errors: {non2xx} non-2xx{f' ({statuses})' if statuses else ''}, {socket_errors} socket errors "
        f"(connect {figures['connect']}, read {figures['read']}, write {figures['write']}, "
        f"timeout {figures['timeout']})"
    )
    print(
        f"  CPU over {wall:.1f} s on {cores:.0f} cores: worker {worker_cpu:.1f} s "
        f"({worker_cpu / total:.0%} of the machine, "
        f"{worker_cpu / (worker_cpu + web_cpu):.0%} of web + worker), "
        f"web {web_cpu:.1f} s ({web_cpu / total:.0%}), wrk {wrk_cpu:.1f} s ({wrk_cpu / total:.0%}); "
        f"machine busy {busy / total:.0%} (the rest: PostgreSQL, Redis, other work on the machine)"
    )
    # CPU per push is what a busy machine distorts least: it says what the figure would be with the
    # cores to ourselves, where requests/s says how much of them we got.
    if requests:
        web_ms, worker_ms = web_cpu / requests * 1000, worker_cpu / requests * 1000
        print(f"  CPU per push: web {web_ms:.2f} ms, worker {worker_ms:.2f} ms")

    # Every push the server accepted is one batch; the points stored must be exactly those, once each
    # (the values are distinct). wrk may have left a few answers unread when its time ran out, so the
    # server may have accepted a few more than the 2xx wrk counted, never fewer. gunicorn stops
    # gracefully first: the requests it still held are answered (and counted) before the count.
    web.stop()

    def server_accepted() -> int:
        return query_one(db_url, "SELECT count(*) FROM telemetry_ingestbatch")[0] - batches_before

    def stored() -> tuple[int, int]:
        sql = "SELECT count(*), count(DISTINCT value) FROM telemetry_metricpoint WHERE metric = %s"
        points, distinct = query_one(db_url, sql, PUSH_METRIC)
        return points, distinct

    failures = []
    try:
        waited = wait_until(
            lambda: unapplied(db_url) == 0 and stored()[0] >= server_accepted(),
            timeout=args.store_timeout,
            what="every accepted point stored",
        )
    except BenchFailed as exc:
        failures.append(str(exc))
        waited = args.store_timeout
    points, distinct = stored()
    by_server = server_accepted()
    print(
        f"  points stored: {points:,} ({distinct:,} distinct) of {accepted:,} accepted (2xx seen by wrk), "
        f"{by_server:,} pushes recorded by the server; all stored {waited:.1f} s after gunicorn stopped"
    )

    if ratio is not None and ratio < MIN_E2E_RATIO:
        failures.append(f"end-to-end ratio {ratio:.2f} < {MIN_E2E_RATIO}")
    if rss_mb is not None and rss_mb >= MAX_WORKER_RSS_MB:
        failures.append(f"worker RSS {rss_mb:.0f} MB >= {MAX_WORKER_RSS_MB} MB")
    if rps < MIN_SMALL_RPS:
        failures.append(f"single-point pushes {rps:.0f}/s < {MIN_SMALL_RPS}/s")
    if p99 > MAX_SMALL_P99_MS:
        failures.append(f"single-point push p99 {p99:.1f} ms > {MAX_SMALL_P99_MS} ms")
    if non2xx or socket_errors:
        failures.append(f"{non2xx} non-2xx answers and {socket_errors} socket errors")
    if points != by_server or distinct != points:
        failures.append(
            f"{by_server:,} pushes accepted by the server, {points:,} points stored ({distinct:,} distinct)"
        )
    if not accepted <= by_server <= accepted + args.connections + socket_errors:
        failures.append(f"wrk saw {accepted:,} accepted, the server recorded {by_server:,}")
    for failure in failures:
        print(f"MISSED: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
