"""What the production middleware costs a metrics push: request id and metrics, ops endpoints, the
Content-Security-Policy, the per-token rate limit (a Redis round trip) and login throttling.

The same gunicorn (3 sync workers) answers the same single-point pushes from 4 keep-alive clients,
once with Readiness's settings and once with those middlewares taken out, alternating for a few rounds
in one run. The figure is the CPU time the web processes spend per push (user + system, from /proc),
which a machine busy with other work inflates far less than it does requests per second.

    python bench/push_overhead.py [--rounds 3] [--pushes 3000]

Needs PostgreSQL and Redis like bench/ingest.py; creates and drops its own database. Exits non-zero
when the middleware adds more than 25% to the CPU time of a push.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import (  # the sibling benchmark's database and HTTP helpers
    PYTHON,
    ROOT,
    Client,
    bench_database,
    bench_token,
    drop_database,
    manage,
)

# ingest put the repository on the path: the same free-port and wait helpers as the fault suite.
from tests.servers import free_port, port_open, wait_for

MAX_OVERHEAD = 0.25
CLIENTS = 4
OURS = (
    "readiness.observability.middleware.RequestContextMiddleware",
    "readiness.observability.middleware.OpsEndpointsMiddleware",
    "readiness.security.headers.ContentSecurityPolicyMiddleware",
    "readiness.security.ratelimit.ApiRateLimitMiddleware",
    "axes.middleware.AxesMiddleware",
)
WITHOUT = (
    f"from readiness.settings import *  # noqa\nMIDDLEWARE = [m for m in MIDDLEWARE if m not in {OURS!r}]\n"
)
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / TICKS


def children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def cpu_per_push(env: dict[str, str], token: str, pushes: int) -> float:
    port = free_port()
    web = subprocess.Popen(
        [PYTHON, "-m", "gunicorn", "readiness.wsgi:application", f"--bind=127.0.0.1:{port}", "--workers=3"],
        cwd=ROOT,
        env=env,
    )
    body = orjson.dumps({"points": [{"metric": "requests", "value": 1.0}]})

    def push(count: int) -> None:
        client = Client(port, token)
        request = client.request_bytes(body)
        for _ in range(count):
            status, _ = client.post(body, request)
            if status != 202:
                raise RuntimeError(f"push answered {status}")

    def load(count: int) -> None:
        threads = [threading.Thread(target=push, args=(count // CLIENTS,)) for _ in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    try:
        if not wait_for(lambda: port_open(port), timeout=60):
            raise RuntimeError(f"gunicorn did not listen on {port} within 60 s")
        time.sleep(1)
        load(400)  # warm every worker: imports, connections, the rate-limit script
        pids = children(web.pid)
        before = cpu_seconds(pids)
        load(pushes)
        return (cpu_seconds(pids) - before) / pushes
    finally:
        web.send_signal(signal.SIGTERM)
        web.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pushes", type=int, default=3000)
    args = parser.parse_args()
    db_name = f"readiness_overhead_{os.getpid()}"
    db_url = bench_database(db_name)
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "settings_without_ours.py").write_text(WITHOUT)
        env = {
            **os.environ,
            "DATABASE_URL": db_url,
            "CELERY_BROKER_URL": os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/14"),
            "DJANGO_DEBUG": "false",
            "READINESS_VAR_DIR": str(Path(folder, "var")),
            "LOG_LEVEL": "WARNING",
            # Limited like production, with room for the benchmark's one token.
            "READINESS_API_RATE_LIMIT": "1000000/m",
        }
        without = {**env, "PYTHONPATH": folder, "DJANGO_SETTINGS_MODULE": "settings_without_ours"}
        try:
            manage(env, "migrate", "--no-input", "-v0")
            token = bench_token(env)
            base, full = [], []
            for n in range(args.rounds):
                base.append(cpu_per_push(without, token, args.pushes))
                full.append(cpu_per_push(env, token, args.pushes))
                without_ms, with_ms = base[-1] * 1000, full[-1] * 1000
                print(f"round {n + 1}: {without_ms:.3f} ms without, {with_ms:.3f} ms with the middleware")
        finally:
            drop_database(db_name)
    base_ms, full_ms = statistics.median(base) * 1000, statistics.median(full) * 1000
    overhead = full_ms / base_ms - 1
    print(
        f"CPU per push (median of {args.rounds}): {base_ms:.3f} ms without, {full_ms:.3f} ms with: "
        f"+{overhead:.0%} (required <= {MAX_OVERHEAD:.0%})"
    )
    if overhead > MAX_OVERHEAD:
        print(f"MISSED: the middleware adds {overhead:.0%} > {MAX_OVERHEAD:.0%}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
