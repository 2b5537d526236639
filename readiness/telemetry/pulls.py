"""Pull cycles (PRODUCT.md §8): claim the due sources, read them concurrently, store their points.

beat (every 10 s) -> task on the ``pulls`` queue -> claim due sources (conditional UPDATE each)
    -> per source, in a thread: resolve and check its address (egress.py), then read it (prometheus.py
       from the last stored point; mlflow.py the model version's metrics), 10 s for the whole source
    -> one transaction for the cycle: lock the sources' rows, keep only the points not stored yet,
       insert them into MetricPoint with source ``<kind>:<name>``, record each outcome on its source
    -> per project that got points: a coalesced re-evaluation

Duplicates: a point is stored once per source, series and timestamp. Chosen over a unique index on
the metric table (which every push would pay for): the store step, holding the source's row lock,
keeps only Prometheus samples strictly newer than ``pulled_until``, the newest point it stored for
that query's metric, and moves it in the same transaction as the insert (every series of a query
shares its timestamps, on the step's grid); MLflow values only for a version and metric not stored
yet. The lock makes check and insert one step even when a ``readiness_source run`` overlaps a
scheduled pull.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

import httpx
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from readiness.projects.vocabulary import Stage
from readiness.security.egress import EgressRefused, deny_networks, destination, http_client
from readiness.telemetry.claiming import claim_due
from readiness.telemetry.models import MetricPoint, MetricSource
from readiness.telemetry.push_rules import LABEL_KEY_RE, MAX_LABEL_VALUE, MAX_LABELS
from readiness.telemetry.rollups.marks import rollups_mark
from readiness.telemetry.signals import project_evidence_changed
from readiness.telemetry.sources.auth import auth_headers
from readiness.telemetry.sources.exchange import EXCHANGE_THREADS, SourceError
from readiness.telemetry.sources.mlflow import version_metrics
from readiness.telemetry.sources.prometheus import pull_window, query_range

log = logging.getLogger(__name__)

# PRODUCT.md §8: a source costs at most this much of a cycle, all its queries together.
SOURCE_TIMEOUT = 10.0
# A cycle claims at most this many rounds of READINESS_PULL_CONCURRENCY sources: each round lasts at
# most SOURCE_TIMEOUT, so the worst cycle (every source timing out) stays inside the task's limits;
# sources beyond stay due and the next tick takes them.
CLAIM_ROUNDS = 10
ERROR_MAX = MetricSource._meta.get_field("last_error").max_length or 300
USER_AGENT = "Readiness-Pull/1"


@dataclass(frozen=True)
class PulledPoint:
    metric: str
    ts: datetime
    value: float
    labels: dict[str, str]


@dataclass
class PullResult:
    """What one read of a source gave: the points it would store, and what went wrong (a failed query
    of several still lets the others' points through)."""

    points: list[PulledPoint] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # why a query or metric gave nothing, for a Test

    @property
    def error(self) -> str:
        return "; ".join(self.errors)[:ERROR_MAX]


@dataclass(frozen=True)
class CycleReport:
    pulled: int
    failed: int
    stored: int
    seconds: float
    reading: float = 0.0  # of which the concurrent reads (the rest is the database's)


# --- reading ----------------------------------------------------------------------------------------

_TLS: ssl.SSLContext | None = None
_TLS_LOCK = threading.Lock()


def _tls() -> ssl.SSLContext:
    # One verifying context for every source client: building one loads the CA bundle (milliseconds),
    # which 200 sources a cycle would pay 200 times.
    global _TLS
    with _TLS_LOCK:
        if _TLS is None:
            _TLS = httpx.create_ssl_context()
        return _TLS


@contextmanager
def source_client(url: str) -> Iterator[tuple[httpx.Client, str]]:
    """A client for ``url`` and the base URL to ask: the host is resolved and checked now by the
    address rules (``EgressRefused`` when denied), and the requests go to the checked address with the
    name in the Host header and, for TLS, in SNI and the certificate check."""
    checked = destination(url, deny=deny_networks())
    host = checked.url.raw_host.decode("ascii")
    pinned = str(checked.url.copy_with(host=str(checked.address)))

    def name_the_host(request: httpx.Request) -> None:
        if checked.url.scheme == "https" and str(checked.address) != host:
            request.extensions["sni_hostname"] = host

    client = http_client(
        timeout=SOURCE_TIMEOUT,
        verify=_tls(),
        headers={"Host": checked.url.netloc.decode("ascii"), "User-Agent": USER_AGENT},
        event_hooks={"request": [name_the_host]},
    )
    with client:
        yield client, pinned


def last_points(source: MetricSource) -> dict[str, datetime | None]:
    """Per query's metric, the newest point this source stored for it (None before the first)."""
    return {metric: _parsed(source.pulled_until.get(metric)) for metric in source.queries}


def _parsed(text: object) -> datetime | None:
    return datetime.fromisoformat(text) if isinstance(text, str) else None


def source_read(source: MetricSource, *, now: datetime) -> PullResult:
    """Read ``source`` once, storing nothing: the points a pull now would store. Never raises for
    anything the source does."""
    result = PullResult()
    started = time.monotonic()
    try:
        headers = auth_headers(auth=source.auth or None)
        with source_client(source.url) as (client, url):
            if source.kind == MetricSource.Kind.PROMETHEUS:
                _read_prometheus(source, client, url, headers, now, last_points(source), started, result)
            else:
                _read_mlflow(source, client, url, headers, result)
    except (SourceError, EgressRefused) as exc:
        result.errors.append(str(exc))
    except Exception as exc:  # a bug must cost this source's pull, not the cycle
        log.exception("pull of source %s failed", source.pk)
        result.errors.append(f"pull failed: {exc.__class__.__name__}: {exc}")
    return result


def _read_prometheus(
    source: MetricSource,
    client: httpx.Client,
    url: str,
    headers: dict[str, str],
    now: datetime,
    last: dict[str, datetime | None],
    started: float,
    result: PullResult,
) -> None:
    for metric, query in source.queries.items():
        window = pull_window(last_point_at=last.get(metric), now=now, interval=source.interval)
        if window is None:
            result.notes.append(f"{metric}: nothing new since {last.get(metric):%H:%M:%S}")
            continue
        remaining = SOURCE_TIMEOUT - (time.monotonic() - started)
        if remaining <= 0.1:
            result.errors.append(f"{metric}: not asked, the source's {SOURCE_TIMEOUT:g} s were spent")
            continue
        # The source's 10 s are for all its queries together: each gets what the previous left.
        client.timeout = httpx.Timeout(remaining)
        try:
            series = query_range(
                client,
                url=url,
                query=query,
                start=window.start,
                end=window.end,
                step=window.step,
                headers=headers,
            )
        except SourceError as exc:
            result.errors.append(f"{metric}: {exc}")
            continue
        for one in series:
            refusal = _labels_refusal(one.labels)
            if refusal:
                result.errors.append(f"{metric}: {refusal}")
                continue
            labels = dict(one.labels)
            result.points += [PulledPoint(metric, sample.ts, sample.value, labels) for sample in one.samples]
        if not series:
            result.notes.append(f"{metric}: no samples from {window.start:%H:%M:%S} to {window.end:%H:%M:%S}")


def _labels_refusal(labels: dict[str, str]) -> str:
    """Why a series' labels cannot be a point's (PRODUCT.md §3's label rules), "" when they can."""
    if len(labels) > MAX_LABELS:
        return f"a series has {len(labels)} labels, at most {MAX_LABELS}: aggregate with sum by (...)"
    for key, value in labels.items():
        if not LABEL_KEY_RE.fullmatch(key):
            return f"label {key!r} is not a valid label name ([a-z_][a-z0-9_]*, 50 characters)"
        if len(value) > MAX_LABEL_VALUE:
            return f"label {key} has a value longer than {MAX_LABEL_VALUE} characters"
    return ""


def _read_mlflow(
    source: MetricSource, client: httpx.Client, url: str, headers: dict[str, str], result: PullResult
) -> None:
    read = version_metrics(
        client,
        url=url,
        model=source.model,
        metrics=source.metrics,
        alias=source.alias or None,
        version=None if source.alias else source.version,
        headers=headers,
    )
    labels = {"model_version": read.version.version}
    result.points += [PulledPoint(m.metric, m.ts, m.value, dict(labels)) for m in read.metrics]
    result.notes += [
        f"{metric}: not logged in the run of version {read.version.version}" for metric in read.missing
    ]


# --- storing ----------------------------------------------------------------------------------------


def sources_store(*, pulls: list[tuple[MetricSource, PullResult]], now: datetime) -> int:
    """Store reads' new points and record each one's outcome on its source, in one transaction with
    the sources' rows locked (in id order, so two stores never deadlock). Returns the points stored.

    A handful of statements whatever the number of sources: every wait for the database counts 200
    times in a cycle of 200 sources."""
    with transaction.atomic():
        ids = sorted({source.pk for source, _ in pulls})
        locked = {s.pk: s for s in MetricSource.objects.select_for_update().filter(pk__in=ids).order_by("pk")}
        rows: list[MetricPoint] = []
        updated: list[MetricSource] = []
        refreshed: set[int] = set()
        for source, result in pulls:
            row = locked.get(source.pk)
            if row is None:  # deleted while it was being read
                continue
            fresh = _not_stored(row, result.points)
            rows += [
                MetricPoint(
                    project_id=row.project_id,
                    metric=point.metric,
                    ts=point.ts,
                    value=point.value,
                    labels=point.labels,
                    source=row.label,
                )
                for point in fresh
            ]
            if row.kind == MetricSource.Kind.PROMETHEUS:
                newest = dict(row.pulled_until)
                for point in fresh:
                    if _parsed(newest.get(point.metric)) is None or point.ts > _parsed(newest[point.metric]):  # type: ignore[operator]
                        newest[point.metric] = point.ts.isoformat()
                row.pulled_until = newest
            row.last_pull_at = now
            row.points_stored += len(fresh)
            if result.errors:
                row.last_error = result.error
                # The failing run began at its first failure; later failures keep that time.
                row.failing_since = row.failing_since or now
            else:
                row.last_success_at, row.last_error, row.failing_since = now, "", None
            updated.append(row)
            if fresh:
                refreshed.add(row.project_id)
        MetricPoint.objects.bulk_create(rows, batch_size=2_000)
        # A Prometheus backfill or an MLflow run's metrics are points of closed minutes.
        rollups_mark((row.project_id, row.metric, row.ts) for row in rows)
        MetricSource.objects.bulk_update(updated, STATE_FIELDS, batch_size=500)
        if refreshed:
            project_evidence_changed.send(sender=MetricSource, project_ids=sorted(refreshed))
    return len(rows)


STATE_FIELDS = [
    "pulled_until",
    "last_pull_at",
    "points_stored",
    "last_error",
    "failing_since",
    "last_success_at",
]


def _not_stored(source: MetricSource, points: list[PulledPoint]) -> list[PulledPoint]:
    if not points:
        return []
    if source.kind == MetricSource.Kind.PROMETHEUS:
        newest = last_points(source)
        return [p for p in points if newest.get(p.metric) is None or p.ts > newest[p.metric]]  # type: ignore[operator]
    fresh = []
    for point in points:
        stored = MetricPoint.objects.filter(
            project_id=source.project_id,
            metric=point.metric,
            source=source.label,
            labels__model_version=point.labels["model_version"],
        ).exists()
        if not stored:
            fresh.append(point)
    return fresh


# --- cycles -----------------------------------------------------------------------------------------


def sources_claim_due(*, now: datetime, limit: int) -> list[MetricSource]:
    """Claim up to ``limit`` due sources, oldest due first, each by ``UPDATE ... SET next_pull_at =
    <next> WHERE id = X AND next_pull_at = <old>`` that must change exactly one row: of two overlapping
    cycles only one pulls a source. The due time moves before the pull, so a crashed cycle never
    stalls a source (it is due again one interval later), and a pull that finds nothing new leaves no
    trace but the next due time."""
    due = (
        MetricSource.objects.filter(enabled=True, next_pull_at__lte=now)
        .exclude(project__stage=Stage.RETIRED)
        .order_by("next_pull_at", "id")[:limit]
    )
    # One transaction, one commit: the claims of a cycle cost one wait for the disk, not one each. A
    # concurrent cycle's UPDATE of the same row waits for this commit, then finds the old due time
    # gone and changes nothing.
    with transaction.atomic():
        return claim_due(due, due_field="next_pull_at", now=now)


def sources_pull(sources: list[MetricSource], *, now: datetime, concurrency: int) -> CycleReport:
    """Read ``sources`` at most ``concurrency`` at once (threads: each waits on a server; the reads
    touch no database), then store their points."""
    if not sources:
        return CycleReport(pulled=0, failed=0, stored=0, seconds=0.0)
    started = time.perf_counter()
    reading_started = time.perf_counter()
    # Each reading thread waits on one exchange thread: more readers than exchange threads would queue
    # exchanges, and the queueing would eat into their sources' 10 s.
    workers = min(concurrency, EXCHANGE_THREADS, len(sources))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pull") as pool:
        results = list(pool.map(lambda s: source_read(s, now=now), sources))
    reading = round(time.perf_counter() - reading_started, 3)
    stored = sources_store(pulls=list(zip(sources, results, strict=True)), now=now)
    failed = sum(1 for r in results if r.errors)
    seconds = round(time.perf_counter() - started, 3)
    log.info(
        "pulled %d sources in %.2f s: %d failed, %d points stored", len(sources), seconds, failed, stored
    )
    return CycleReport(pulled=len(sources), failed=failed, stored=stored, seconds=seconds, reading=reading)


def pulls_run(*, now: datetime | None = None) -> CycleReport:
    """One pull cycle: claim the due sources and pull them."""
    now = now or timezone.now()
    concurrency = settings.READINESS_PULL_CONCURRENCY
    sources = sources_claim_due(now=now, limit=concurrency * CLAIM_ROUNDS)
    return sources_pull(sources, now=now, concurrency=concurrency)


def source_run(*, source: MetricSource, now: datetime | None = None) -> tuple[PullResult, int]:
    """Pull one source now, whatever its schedule (``readiness_source run``)."""
    now = now or timezone.now()
    result = source_read(source, now=now)
    return result, sources_store(pulls=[(source, result)], now=now)


# How many points of a test run are written out one by one; the rest are counted.
SHOWN_POINTS = 20


def pull_summary(result: PullResult, *, stored: int | None = None) -> list[str]:
    """A read in lines for people (the admin's Test, ``readiness_source``): what it would store (or
    stored), per metric, the first points, and what went wrong."""
    counts: dict[str, int] = defaultdict(int)
    for point in result.points:
        counts[point.metric] += 1
    verb = "would store" if stored is None else "stored"
    total = len(result.points) if stored is None else stored
    lines = [f"{verb} {total} point{'s' if total != 1 else ''}"]
    lines += [
        f"  {metric}: {count} point{'s' if count != 1 else ''}" for metric, count in sorted(counts.items())
    ]
    for point in result.points[:SHOWN_POINTS]:
        labels = ",".join(f"{k}={v}" for k, v in sorted(point.labels.items()))
        lines.append(f"  {point.ts:%Y-%m-%d %H:%M:%S}Z {point.metric}{{{labels}}} = {point.value:g}")
    if len(result.points) > SHOWN_POINTS:
        lines.append(f"  ... and {len(result.points) - SHOWN_POINTS} more")
    lines += [f"note: {note}" for note in result.notes]
    lines += [f"error: {error}" for error in result.errors]
    return lines
