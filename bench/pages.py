"""Page benchmark (issue 5): server time of the dashboard's pages on a generated portfolio.

One run, on this machine's PostgreSQL, in its own throwaway database (created and dropped here):

1. a portfolio of 100 projects, then the same grown to 1,000: each with the baseline template's 25
   criteria plus 5 metric criteria (30), evaluated once by the real service (``scorecard_refresh``),
   12 weeks of earlier daily scorecards for the readiness trend, and 30 days of 4 metrics: every
   minute for 5 projects, every hour for the rest (bulk data written with COPY); then grown to
   10,000 (``--huge``), the new projects with the same criteria and history and a copy of an
   evaluated project's latest scorecard (no points: the portfolio reads scorecards only); before the
   project pages, the history is folded into rollups, as the fold job keeps it in production;
2. server time through Django's test client (the whole request: middleware, view, queries, template),
   median of 20 requests after 3 warm-up requests, and the SQL queries of one request:
   - portfolio ``/`` with 100, 1,000 and 10,000 projects (required: ≤ 100 ms at 1,000, ≤ 150 ms at
     10,000; equal queries at every size);
   - the scorecard of a project with 30 criteria and 1-minute data (required: ≤ 150 ms, charts and
     all, as the page is when the run happens);
   - for the record, not required: its history, its printable report, the CSV export of every row;
3. the cold first request of each page: the first request after server start, in a fresh process
   (Django set up as the WSGI module does at start, the reader already logged in), so the URLconf, views
   and templates load, and nothing is remembered yet; the median of three such server starts
   (``--cold-runs``), each printed: one start is one sample, and on two shared cores one sample moves
   by tens of milliseconds. Required: the same bars as the warm pages (a reader's first visit after a
   deploy or a worker restart is a page view like any other).

Every response's status code is checked (200), the timed ones included.

    python bench/pages.py [--projects 1000] [--small 100] [--huge 10000] [--requests 20]
    python bench/pages.py --only portfolio     # the portfolio alone: no fold, no project pages

``--only portfolio`` measures and judges the portfolio's figures only, skipping the fold of the
history and the project pages (about eight minutes of a full run), so that pairs of runs of two
branches fit in a short session.

Needs PostgreSQL (DATABASE_URL's server, default postgres://postgres@127.0.0.1:5432); no broker server
(what the evaluations enqueue goes to a file-system broker in a throwaway folder, and no worker runs).
Exits non-zero when a required figure is missed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from ingest import bench_database, drop_database  # noqa: E402 -- the same throwaway-database helpers

# Required figures (issue 14's acceptance bar), warm and cold first request alike.
MAX_PORTFOLIO_MS = 100.0  # at --projects (1,000)
MAX_HUGE_PORTFOLIO_MS = 150.0  # at --huge (10,000)
MAX_SCORECARD_MS = 150.0

MINUTE_PROJECTS = 5
# The tables a step of the portfolio's growth writes, vacuumed after each step; not the metric points'
# (millions of rows, appended in time order: only ANALYZEd, as the pages read their rollups).
SETTLED_TABLES = (
    "projects_project",
    "projects_stagechange",
    "scoring_criterion",
    "scoring_scorecard",
    "scoring_standing",
    "scoring_standingblocker",
    "scoring_weeklydecision",
)
DAYS = 30
HISTORY_DAYS = 84  # the trend's 12 weeks
METRICS = ("latency_ms", "health.up", "error_rate", "accuracy")
# The "few metric criteria" beyond the template's, on the same metrics: (key, dimension, metric,
# aggregation, window, op, threshold).
EXTRA_METRIC_CRITERIA = (
    ("latency_p50", "engineering", "latency_ms", "p50", "1h", "<=", 200.0),
    ("latency_p95", "engineering", "latency_ms", "p95", "24h", "<=", 280.0),
    ("availability_24h", "engineering", "health.up", "mean", "24h", ">=", 0.99),
    ("error_rate_peak", "engineering", "error_rate", "max", "24h", "<=", 0.05),
    ("accuracy_floor", "data_science", "accuracy", "min", "7d", ">=", 0.85),
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--projects", type=int, default=1000, help="the large portfolio")
    parser.add_argument("--small", type=int, default=100, help="the small portfolio, for the ratio")
    parser.add_argument(
        "--huge", type=int, default=10_000, help="the leadership-scale portfolio (0: not measured)"
    )
    parser.add_argument("--requests", type=int, default=20, help="timed requests per page")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--cold-runs", type=int, default=3, help="server starts per cold first request")
    parser.add_argument(
        "--only", choices=["portfolio"], help="measure the portfolio only (no fold, no project pages)"
    )
    parser.add_argument("--profile", metavar="URL", help="print a cProfile of one request to URL at the end")
    parser.add_argument("--first-request", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.first_request:
        return first_request_here(args.first_request)
    if not MINUTE_PROJECTS <= args.small < args.projects:
        parser.error(f"need {MINUTE_PROJECTS} <= --small < --projects")
    if args.huge and args.huge <= args.projects:
        parser.error("need --huge > --projects, or 0")
    if args.cold_runs < 1:
        parser.error("need --cold-runs >= 1")

    db_name = f"readiness_bench_pages_{os.getpid()}"
    db_url = bench_database(db_name)
    var_dir = Path(tempfile.mkdtemp(prefix="readiness-bench-pages-"))
    os.environ.update(
        DATABASE_URL=db_url,
        READINESS_VAR_DIR=str(var_dir),
        DJANGO_SETTINGS_MODULE="readiness.settings",
        DJANGO_DEBUG="false",
        LOG_LEVEL="WARNING",
    )
    # The file-system broker in the throwaway folder: nothing to collide with, nothing left behind.
    os.environ.pop("CELERY_BROKER_URL", None)
    try:
        import django

        django.setup()
        return run(args)
    finally:
        from django.db import connections

        connections.close_all()
        drop_database(db_name)
        shutil.rmtree(var_dir, ignore_errors=True)


# --- Data ------------------------------------------------------------------------------------------


def copy_models(model: Any, objects: Iterable[Any]) -> int:
    """COPY unsaved model instances into their table: every concrete column, each value prepared by its
    own field, so a field added to the model later is written too (or fails loudly)."""
    from django.db import connection

    fields = [field for field in model._meta.concrete_fields if not field.primary_key]
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    table = connection.ops.quote_name(model._meta.db_table)
    count = 0
    with connection.cursor() as cursor, cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for obj in objects:
            copy.write_row(
                [field.get_db_prep_save(getattr(obj, field.attname), connection) for field in fields]
            )
            count += 1
    return count


def copy_points(project_ids: Sequence[int], *, every: dt.timedelta, now: dt.datetime) -> int:
    """30 days of the four metrics per project, one point per ``every``, as COPY text (the fast path
    bench/ingest.py measures against)."""
    from django.db import connection

    steps = int(dt.timedelta(days=DAYS) / every)
    stamps = [(now - k * every).isoformat() for k in range(steps)]
    written = 0
    with connection.cursor() as cursor:
        columns = "(project_id, source, metric, ts, value, labels)"
        with cursor.copy(f"COPY telemetry_metricpoint {columns} FROM STDIN") as copy:
            for project_id in project_ids:
                rng = random.Random(project_id)
                base = rng.uniform(150, 320)
                lines = []
                for k, stamp in enumerate(stamps):
                    wave = math.sin(k / 97.0)
                    latency = base + 40 * wave + rng.random() * 30
                    up = 0.0 if rng.random() < 0.0008 else 1.0
                    errors = max(0.0, 0.01 + 0.01 * wave + rng.random() * 0.01)
                    accuracy = 0.9 + 0.03 * wave + rng.random() * 0.01
                    for metric, value in zip(METRICS, (latency, up, errors, accuracy), strict=True):
                        source = "probe:api" if metric.startswith("health.") else "push:bench"
                        lines.append(f"{project_id}\t{source}\t{metric}\t{stamp}\t{value:.6g}\t{{}}\n")
                copy.write("".join(lines))
                written += len(lines)
    return written


class Portfolio:
    """Grows one generated portfolio in steps, so the small and the large one share everything."""

    def __init__(self, now: dt.datetime) -> None:
        from django.contrib.auth import get_user_model
        from django.contrib.auth.models import Group

        from readiness.projects.models import LEADERSHIP_GROUP, Team
        from readiness.scoring.models import Template

        self.now = now
        users = get_user_model()
        self.leader = users.objects.create(username=LEADER, first_name="Lea", last_name="Leader")
        self.leader.groups.add(Group.objects.get_or_create(name=LEADERSHIP_GROUP)[0])
        self.owners = {
            dim: users.objects.create(username=f"{dim}-lead", first_name=dim.title(), last_name="Lead")
            for dim in ("data_science", "engineering", "product", "security")
        }
        self.teams = [Team.objects.create(slug=f"team-{n}", name=f"Team {n}") for n in range(20)]
        self.template = Template.objects.get(key="baseline")
        self.template_criteria = list(self.template.criteria.order_by("position", "id"))
        self.count = 0
        self.minute_slugs: list[str] = []
        self.evaluated: list[int] = []  # ids of the projects evaluated by the real service

    def grow(self, to: int, *, evaluate: bool = True) -> dict[str, float]:
        """Add projects up to ``to`` in all; returns how long each step took, in seconds. Without
        ``evaluate`` the new projects get no metric points, and each a copy of an evaluated project's
        latest scorecard instead of an evaluation of its own: the portfolio reads scorecards, not
        points, and 9,000 more evaluations would take the run a quarter of an hour."""
        from django.db import connection

        from readiness.projects.models import Project, StageChange
        from readiness.scoring.models import Criterion, Scorecard
        from readiness.scoring.standings import current_models, standings_rebuild
        from readiness.scoring.templates import template_definition_fields

        timings: dict[str, float] = {}
        started = time.perf_counter()
        rng = random.Random(to)
        new = []
        for n in range(self.count, to):
            stage = rng.choices(["prototype", "pilot", "production", "retired"], [50, 35, 12, 3])[0]
            since = self.now - dt.timedelta(days=rng.randint(1, 200))
            new.append(
                Project(
                    slug=f"bench-{n:04d}",
                    name=f"Bench project {n:04d}",
                    description="A generated project of the page benchmark.",
                    team=self.teams[n % len(self.teams)],
                    stage=stage,
                    risk_tier=rng.choice(["minimal", "limited", "high"]),
                    created_at=since - dt.timedelta(days=30),
                    stage_changed_at=since,
                    **{f"owner_{dim}": user for dim, user in self.owners.items()},
                )
            )
        Project.objects.bulk_create(new)
        StageChange.objects.bulk_create(
            StageChange(project=p, from_stage="", to_stage=p.stage, changed_at=p.stage_changed_at)
            for p in new
        )
        fields = template_definition_fields()
        criteria = []
        for project in new:
            for source in self.template_criteria:
                values = {name: getattr(source, name) for name in fields}
                criteria.append(
                    Criterion(
                        project=project, source_template=self.template, position=source.position, **values
                    )
                )
            for offset, (key, dim, metric, aggregation, window, op, threshold) in enumerate(
                EXTRA_METRIC_CRITERIA
            ):
                criteria.append(
                    Criterion(
                        project=project,
                        key=key,
                        title=key.replace("_", " ").capitalize(),
                        dimension=dim,
                        kind="metric",
                        metric=metric,
                        aggregation=aggregation,
                        window=window,
                        op=op,
                        threshold=threshold,
                        position=100 + offset,
                        remediation="Find the regression and fix it.",
                    )
                )
        copy_models(Criterion, criteria)
        timings["projects and criteria"] = time.perf_counter() - started

        if not evaluate:
            started = time.perf_counter()
            copied = self._copy_latest(new)
            timings[f"{copied:,} copied latest scorecards"] = time.perf_counter() - started
        else:
            timings |= self._points_and_evaluations(new)
        started = time.perf_counter()
        latest = {s.project_id: s for s in Scorecard.objects.filter(project__in=new)}
        written = copy_models(Scorecard, self._history(new, latest, rng))
        # COPY bypasses Scorecard.save: the standings the portfolio reads are rebuilt from what it wrote.
        standings_rebuild(store=current_models(), project_ids=[project.pk for project in new])
        with connection.cursor() as cursor:
            # What autovacuum does within a minute or two of a bulk load, done before measuring so that
            # its workers do not share the two cores with the measured requests: it sets the tables'
            # visibility maps (the latest-scorecard probes and the funnel's ranking are then answered
            # from their indexes alone) and their statistics. Then a checkpoint, so the load's dirty
            # pages are not being written out during the first requests either.
            for table in SETTLED_TABLES:
                cursor.execute(f"VACUUM ANALYZE {table}")
            cursor.execute("ANALYZE")
            cursor.execute("CHECKPOINT")
        timings[f"{written:,} earlier scorecards + VACUUM ANALYZE + CHECKPOINT"] = (
            time.perf_counter() - started
        )
        self.count = to
        return timings

    def _points_and_evaluations(self, new: list[Any]) -> dict[str, float]:
        from readiness.scoring.services import scorecard_refresh

        timings: dict[str, float] = {}
        started = time.perf_counter()
        minute = new[: max(0, MINUTE_PROJECTS - len(self.minute_slugs))]
        self.minute_slugs += [p.slug for p in minute]
        points = copy_points([p.pk for p in minute], every=dt.timedelta(minutes=1), now=self.now)
        points += copy_points([p.pk for p in new[len(minute) :]], every=dt.timedelta(hours=1), now=self.now)
        timings[f"{points:,} metric points"] = time.perf_counter() - started

        started = time.perf_counter()
        for project in new:
            scorecard_refresh(project=project)
        timings[f"{len(new)} evaluations"] = time.perf_counter() - started
        self.evaluated += [p.pk for p in new]
        return timings

    def _copy_latest(self, new: list[Any]) -> int:
        """Each new project gets the latest scorecard of an evaluated one, round robin, as of now."""
        from readiness.scoring.models import Scorecard, scorecard_summary

        # The evaluations ran after ``now``; every earlier scorecard is generated history.
        evaluations = Scorecard.objects.filter(project_id__in=self.evaluated, computed_at__gte=self.now)
        by_project = {s.project_id: s for s in evaluations}
        ring = [by_project[pk] for pk in self.evaluated]
        copies = (
            Scorecard(
                project=project,
                target=source.target,
                decision=source.decision,
                computed_at=source.computed_at,
                digest=source.digest,
                payload=source.payload,
                summary=scorecard_summary(source.payload),
            )
            for project, source in zip(new, (ring[n % len(ring)] for n in range(len(new))), strict=True)
        )
        return copy_models(Scorecard, copies)

    def _history(self, projects: list[Any], latest: dict[int, Any], rng: random.Random) -> Iterable[Any]:
        """A daily scorecard for each of the 12 weeks before the evaluation, the share go rising over
        time. The minute-data projects keep their full payload (their history page is measured); the
        others carry what the portfolio and the trend read."""
        from readiness.scoring.models import Scorecard, scorecard_summary

        for project in projects:
            payload = latest[project.pk].payload
            for day in range(HISTORY_DAYS, 0, -1):
                at = self.now - dt.timedelta(days=day, minutes=rng.randint(0, 600))
                decision = (
                    "go" if rng.random() < 0.15 + 0.3 * (HISTORY_DAYS - day) / HISTORY_DAYS else "no_go"
                )
                if project.slug in self.minute_slugs:
                    body = dict(payload, decision=decision, computed_at=at.isoformat())
                    criteria = [dict(c) for c in payload["criteria"]]
                    flipped = criteria[day % len(criteria)]
                    flipped["status"] = "pass" if flipped["status"] != "pass" else "warn"
                    body["criteria"] = criteria
                else:
                    body = {
                        "decision": decision,
                        "target": payload["target"],
                        "dimensions": payload["dimensions"],
                    }
                    body |= {"criteria": [], "blockers": payload["blockers"] if decision == "no_go" else []}
                yield Scorecard(
                    project=project,
                    target=payload["target"],
                    decision=decision,
                    computed_at=at,
                    digest=f"{project.pk}-{day}",
                    payload=body,
                    summary=scorecard_summary(body),
                )


# --- Measurements ----------------------------------------------------------------------------------


def checked_get(client: Any, url: str) -> Any:
    """GET ``url``; a page that does not answer 200 fails the run, whichever request it is."""
    response = client.get(url)
    if response.status_code != 200:
        raise RuntimeError(f"{url} answered {response.status_code}")
    return response


def measure(client: Any, url: str, *, requests: int, warmup: int) -> tuple[float, int, bytes]:
    """Median server time (ms) of ``requests`` GETs after ``warmup`` ones, and the queries of one."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(warmup):
        checked_get(client, url)
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        checked_get(client, url)
        times.append((time.perf_counter() - started) * 1000)
    with CaptureQueriesContext(connection) as queries:
        response = checked_get(client, url)
    return statistics.median(times), len(queries), response.content


LEADER = "lea"


def first_request_here(url: str) -> int:
    """In a fresh process (``--first-request``, started by ``first_request``): load the WSGI module as
    a gunicorn worker does when it starts (Django set up, middleware loaded; the URLconf, views and
    templates load on the first request), log the leader in, and time the first GET of ``url``."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    import readiness.wsgi  # noqa: F401 -- what a server process imports before its first request

    client = Client()
    client.force_login(get_user_model().objects.get(username=LEADER))
    started = time.perf_counter()
    response = client.get(url)
    print(f"{(time.perf_counter() - started) * 1000:.1f} {response.status_code}")
    return 0


def first_request(url: str, *, runs: int) -> list[float]:
    """Server times (ms) of the cold first request of ``url``, the first after a server's start, in
    ``runs`` fresh processes one after another."""
    return [_first_request_once(url) for _ in range(runs)]


def _first_request_once(url: str) -> float:
    result = subprocess.run(
        [sys.executable, __file__, "--first-request", url],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        raise RuntimeError(f"the first request of {url} failed:\n{result.stdout}{result.stderr}")
    ms, status = lines[-1].split()
    if status != "200":
        raise RuntimeError(f"{url} answered {status} to its first request")
    return float(ms)


def cold_text(samples: list[float]) -> str:
    if len(samples) == 1:
        return f"{samples[0]:.1f} ms"
    each = ", ".join(f"{ms:.1f}" for ms in samples)
    return f"{statistics.median(samples):.1f} ms (median of {len(samples)} server starts: {each})"


def profile(client: Any, url: str) -> None:
    import cProfile
    import pstats

    checked_get(client, url)
    profiler = cProfile.Profile()
    profiler.enable()
    checked_get(client, url)
    profiler.disable()
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
    pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


def fold_history(now: dt.datetime) -> None:
    """Roll up the generated history as the fold job does every minute in production (the pages draw
    windows of a week or more from the rollups), then ANALYZE the rollups as autovacuum would after a
    bulk load: written at once with COPY, the history was never folded. The days before today get the
    value index the daily job builds for each day that ends."""
    from django.db import connection

    from readiness.telemetry.partitions import partitions_value_indexed
    from readiness.telemetry.rollups.fold import rollups_fold

    started = time.perf_counter()
    written = rollups_fold(now=now)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE telemetry_metricrollup")
    print(f"  folded the history into {written:,} rollup rows in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    indexed = partitions_value_indexed(now=now)
    print(f"  value index built on {len(indexed)} sealed partitions in {time.perf_counter() - started:.1f} s")


def run(args: argparse.Namespace) -> int:
    from django.core.management import call_command
    from django.test import Client
    from django.utils import timezone

    # Two shared cores: what else runs decides much of a median, so the run says how loaded it was.
    print("load average at start: {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()))
    started = time.perf_counter()
    call_command("migrate", "--no-input", verbosity=0)
    print(f"migrated in {time.perf_counter() - started:.1f} s")
    portfolio = Portfolio(timezone.now().replace(second=0, microsecond=0))
    client = Client()
    client.force_login(portfolio.leader)
    figures: dict[str, tuple[float, int]] = {}
    cold: dict[str, float] = {}

    sizes = [args.small, args.projects] + ([args.huge] if args.huge else [])
    for size in sizes:
        for step, seconds in portfolio.grow(size, evaluate=size <= args.projects).items():
            print(f"  generated {step} in {seconds:.1f} s")
        samples = first_request("/", runs=args.cold_runs)
        cold[f"portfolio {size}"] = statistics.median(samples)
        ms, queries, content = measure(client, "/", requests=args.requests, warmup=args.warmup)
        rows = content.count(b'class="matrix__project"')
        figures[f"portfolio {size}"] = (ms, queries)
        print(
            f"portfolio / with {size:,} projects ({rows:,} rows shown): {ms:.1f} ms, {queries} queries; "
            f"cold first request {cold_text(samples)}"
        )

    slug = portfolio.minute_slugs[0]
    pages = {
        "scorecard": f"/projects/{slug}/",
        "history": f"/projects/{slug}/history/",
        "report": f"/projects/{slug}/report/",
        "csv export": "/portfolio.csv",
    }
    if args.only == "portfolio":
        pages = {}
    else:
        fold_history(portfolio.now)
    for name, url in pages.items():
        samples = first_request(url, runs=args.cold_runs)
        cold[name] = statistics.median(samples)
        ms, queries, _ = measure(client, url, requests=args.requests, warmup=args.warmup)
        figures[name] = (ms, queries)
        note = " (30 criteria, 1-minute data)" if name != "csv export" else f" ({sizes[-1]:,} projects)"
        print(f"{name} {url}{note}: {ms:.1f} ms, {queries} queries; cold first request {cold_text(samples)}")

    print("load average at the end: {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()))
    small, large = figures[f"portfolio {args.small}"], figures[f"portfolio {args.projects}"]
    print(
        f"portfolio ratio {args.projects:,}/{args.small:,} projects: {large[0] / small[0]:.2f} "
        f"(queries {small[1]} vs {large[1]}, required equal)"
    )
    if args.huge:
        huge = figures[f"portfolio {args.huge}"]
        print(
            f"portfolio ratio {args.huge:,}/{args.small:,} projects: {huge[0] / small[0]:.2f} "
            f"(queries {huge[1]}, required equal)"
        )
    failures = []
    bars = {args.projects: MAX_PORTFOLIO_MS} | ({args.huge: MAX_HUGE_PORTFOLIO_MS} if args.huge else {})
    for size, bar in bars.items():
        warm, first = figures[f"portfolio {size}"][0], cold[f"portfolio {size}"]
        if warm > bar:
            failures.append(f"portfolio with {size:,} projects {warm:.1f} ms > {bar:.0f} ms")
        if first > bar:
            failures.append(
                f"portfolio with {size:,} projects, cold first request {first:.1f} ms > {bar:.0f} ms"
            )
    if "scorecard" in figures and figures["scorecard"][0] > MAX_SCORECARD_MS:
        failures.append(f"scorecard {figures['scorecard'][0]:.1f} ms > {MAX_SCORECARD_MS:.0f} ms")
    if "scorecard" in cold and cold["scorecard"] > MAX_SCORECARD_MS:
        failures.append(
            f"scorecard, cold first request {cold['scorecard']:.1f} ms > {MAX_SCORECARD_MS:.0f} ms"
        )
    queries = {size: figures[f"portfolio {size}"][1] for size in sizes}
    if len(set(queries.values())) > 1:
        failures.append(f"portfolio queries differ by size: {queries}")
    if args.profile:
        profile(client, args.profile)
    for failure in failures:
        print(f"MISSED: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
