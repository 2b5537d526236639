"""Probe-cycle benchmark (issue 4: "a probe cycle over 1,000 targets ... ≤ 10 s").

The whole cycle as the worker runs it every 10 s (``healthchecks_run``): claim the due targets in the
database (one conditional UPDATE each), resolve each target's host name (``localhost``, through the
system resolver, as every probe does), probe them under the concurrency bound, and record the results
(each target's last state, and one batch of ``health.up``/``health.latency_ms`` points per project
through the push path). A local asyncio HTTP server, in its own process so it does not share the
prober's core, answers each request after 200 ms; 5% of the targets (every 20th) are accepted and
never answered, so their probes time out at 2 s. Ten targets a project.

    python bench/probes.py [--targets 1000] [--small 100] [--concurrency 100]

Needs PostgreSQL (DATABASE_URL's server, default postgres://postgres@127.0.0.1:5432); creates and
drops its own database; no broker server (the recorded batches' drain messages go to a file-system
broker in a throwaway folder; applying them is the worker's, measured by bench/ingest.py). Prints
both cycles' times, their parts and their ratio; exits non-zero when the large cycle exceeds 10 s or
any target's recorded state or points are other than expected (fast targets up, silent ones "no
answer within 2 s").
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import heapq
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from ingest import bench_database, drop_database  # noqa: E402 -- the same throwaway-database helpers

ANSWER_AFTER = 0.2  # seconds before the server answers a normal target
TIMEOUT = 2.0  # every target's probe timeout
SILENT_EVERY = 20  # 5% of targets never answer
TARGETS_PER_PROJECT = 10
MAX_CYCLE_SECONDS = 10.0  # required for 1,000 targets


# --- the test server (runs in a child process: python bench/probes.py --serve) ----------------


async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        path = head.split(b" ", 2)[1]
        if path.startswith(b"/silent/"):
            # Accept and hold: read until the prober gives up and closes.
            await reader.read()
            return
        await asyncio.sleep(ANSWER_AFTER)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def serve() -> None:
    # A deep backlog: 100 probes connect at once, more when a round of them ends together.
    server = await asyncio.start_server(answer, "127.0.0.1", 0, backlog=4096)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


# --- the cycle ---------------------------------------------------------------------------------


def silent(n: int) -> bool:
    """Whether the n-th target a size adds (from 0) never answers."""
    return n % SILENT_EVERY == 0


class Targets:
    """Health-check targets in the database, numbered in the order a cycle claims them (all due at
    the same time, so by id)."""

    def __init__(self, port: int) -> None:
        from readiness.projects.models import Team

        self.port = port
        self.team = Team.objects.create(slug="probes", name="Probes")
        self.count = 0

    def add(self, count: int, *, prefix: str = "p") -> list[Any]:
        """``count`` more targets, all due now; returns the new targets' projects."""
        from readiness.projects.models import Project
        from readiness.telemetry.models import HealthCheck

        projects = Project.objects.bulk_create(
            Project(slug=f"{prefix}-{self.count + k:05d}", name=f"Probed {self.count + k}", team=self.team)
            for k in range(0, count, TARGETS_PER_PROJECT)
        )
        checks = []
        for k in range(count):
            n = self.count + k
            path = f"silent/{n}" if silent(k) else f"ok/{n}"
            checks.append(
                HealthCheck(
                    project=projects[k // TARGETS_PER_PROJECT],
                    name=f"t{n}",
                    url=f"http://localhost:{self.port}/{path}",
                    timeout=TIMEOUT,
                    interval=60,
                )
            )
        HealthCheck.objects.bulk_create(checks)
        self.count += count
        return projects


def due_now(projects: list[Any]) -> dt.datetime:
    """Make exactly these projects' targets due (the same due time: claimed in id order)."""
    from django.utils import timezone

    from readiness.telemetry.models import HealthCheck

    now = timezone.now()
    HealthCheck.objects.update(next_probe_at=now + dt.timedelta(hours=1))
    HealthCheck.objects.filter(project__in=projects).update(next_probe_at=now - dt.timedelta(seconds=1))
    return now


def timed(parts: dict[str, float], name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """``function``, adding the seconds each call takes to ``parts[name]``."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            parts[name] = parts.get(name, 0.0) + time.perf_counter() - started

    return wrapper


def cycle(projects: list[Any], concurrency: int) -> tuple[float, dict[str, float], list[str]]:
    """Run one whole cycle over ``projects``' targets; the seconds it took, its parts, and what went
    unexpectedly (checked from the database: each target's recorded state, the points recorded)."""
    from readiness.telemetry import healthchecks
    from readiness.telemetry.models import HealthCheck, IngestBatch

    started_at = due_now(projects)
    parts: dict[str, float] = {}
    claim, record = healthchecks.healthchecks_claim_due, healthchecks.healthchecks_record
    # The module's own functions, timed where the cycle calls them.
    healthchecks.healthchecks_claim_due = timed(parts, "claim", claim)  # type: ignore[assignment]
    healthchecks.healthchecks_record = timed(parts, "record", record)  # type: ignore[assignment]
    try:
        started = time.perf_counter()
        report = healthchecks.healthchecks_run()
        seconds = time.perf_counter() - started
    finally:
        healthchecks.healthchecks_claim_due, healthchecks.healthchecks_record = claim, record
    parts["resolve and probe"] = report.seconds

    problems = []
    checks = list(HealthCheck.objects.filter(project__in=projects).order_by("id"))
    if report.probed != len(checks):
        problems.append(f"probed {report.probed} of {len(checks)} due targets")
    for check in checks:
        quiet = "/silent/" in check.url
        expected = (False, f"no answer within {TIMEOUT:g} s") if quiet else (True, "")
        if (check.last_up, check.last_reason) != expected:
            problems.append(f"target {check.name}: up={check.last_up} reason={check.last_reason!r}")
    batches = list(IngestBatch.objects.filter(project__in=projects, received_at__gte=started_at))
    points = sum(batch.accepted for batch in batches)
    up = sum("/silent/" not in check.url for check in checks)
    # health.up for every target, health.latency_ms for each that answered; one batch per project.
    if (len(batches), points) != (len(projects), len(checks) + up):
        problems.append(
            f"recorded {len(batches)} batches of {points} points, "
            f"expected {len(projects)} of {len(checks) + up}"
        )
    parts["waiting alone"] = floor(["/silent/" in check.url for check in checks], concurrency)
    return seconds, parts, problems


def floor(quiet: list[bool], concurrency: int) -> float:
    """The probing if it cost nothing but the waiting: the same targets, in the order the cycle
    claims them, through the same number of slots (a silent target taking a slot late sets the end)."""
    slots = [0.0] * concurrency
    end = 0.0
    for silent_target in quiet:
        start = heapq.heappop(slots)
        done = start + (TIMEOUT if silent_target else ANSWER_AFTER)
        heapq.heappush(slots, done)
        end = max(end, done)
    return end


def run(args: argparse.Namespace, port: int) -> int:
    from django.core.management import call_command

    print("load average at start: {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()))
    call_command("migrate", "--no-input", verbosity=0)
    targets = Targets(port)
    warm_up = targets.add(TARGETS_PER_PROJECT, prefix="warm-up")
    cycle(warm_up, args.concurrency)  # imports, the event loop's first sockets, the resolver's threads
    small_projects = targets.add(args.small)
    small, small_parts, small_problems = cycle(small_projects, args.concurrency)
    large_projects = small_projects + targets.add(args.targets - args.small)
    large, large_parts, large_problems = cycle(large_projects, args.concurrency)

    print(
        f"probe cycle (claim, DNS resolution, probes, recording): {ANSWER_AFTER * 1000:.0f} ms answers, "
        f"every {SILENT_EVERY}th target silent (timeout {TIMEOUT:g} s), concurrency {args.concurrency}, "
        f"{TARGETS_PER_PROJECT} targets a project"
    )
    for count, seconds, parts in ((args.small, small, small_parts), (args.targets, large, large_parts)):
        bound = parts.pop("waiting alone")
        shown = ", ".join(f"{name} {value:.2f} s" for name, value in parts.items())
        print(f"  {count:>5} targets: {seconds:6.2f} s   ({shown}; waiting alone would take {bound:.2f} s)")
    print(
        f"  ratio {args.targets}/{args.small}: {large / small:.2f}  (targets x{args.targets / args.small:g})"
    )
    print(f"  required: {args.targets} targets <= {MAX_CYCLE_SECONDS:g} s")
    print("load average at the end: {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()))
    failed = False
    for problem in (small_problems + large_problems)[:10]:
        print(f"  UNEXPECTED {problem}")
        failed = True
    if large > MAX_CYCLE_SECONDS:
        print(f"  MISSED: {large:.2f} s > {MAX_CYCLE_SECONDS:g} s")
        failed = True
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", type=int, default=1000)
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=100, help="READINESS_PROBE_CONCURRENCY")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve())
        return 0
    if not 0 < args.small < args.targets:
        parser.error("need 0 < --small < --targets")

    db_name = f"readiness_bench_probes_{os.getpid()}"
    db_url = bench_database(db_name)
    var_dir = Path(tempfile.mkdtemp(prefix="readiness-bench-probes-"))
    os.environ.update(
        DATABASE_URL=db_url,
        READINESS_VAR_DIR=str(var_dir),
        READINESS_PROBE_CONCURRENCY=str(args.concurrency),
        DJANGO_SETTINGS_MODULE="readiness.settings",
        DJANGO_DEBUG="false",
        LOG_LEVEL="WARNING",
    )
    # The file-system broker in the throwaway folder: nothing to collide with, nothing left behind.
    os.environ.pop("CELERY_BROKER_URL", None)
    server = subprocess.Popen([sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, text=True)
    try:
        import django

        django.setup()
        from readiness.telemetry.healthchecks import CLAIM_ROUNDS

        if args.targets > CLAIM_ROUNDS * args.concurrency:
            parser.error(f"--targets is more than one cycle claims ({CLAIM_ROUNDS} x --concurrency)")
        assert server.stdout is not None
        return run(args, int(server.stdout.readline()))
    finally:
        from django.db import connections

        server.terminate()
        server.wait(timeout=10)
        connections.close_all()
        drop_database(db_name)
        shutil.rmtree(var_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
