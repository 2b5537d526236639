"""Pull cycles (PRODUCT.md §8): claim the due sources, read them concurrently, store their points.

beat (every 10 s) -> task on the ``pulls`` queue -> claim due sources (conditional UPDATE each)
    -> per source, in a thread: resolve and check its address (egress.py), then read it (prometheus.py
       from the last stored point; mlflow.py the model version's metrics), 10 s for the whole source
    -> per source, one transaction: lock its row, keep only the points not stored yet, insert them
       into MetricPoint with source ``<kind>:<name>``, record success or error on the source
    -> per project that got points: a coalesced re-evaluation

Duplicates: a point is stored once per source, series and timestamp because the store step, holding
the source's row lock, keeps only Prometheus samples strictly newer than the newest point of that
query's metric already stored by the source (every series of a query shares its timestamps, which sit
on the step's grid), and only MLflow values of a version and metric not stored yet. The lock makes the
check and the insert one step even when a ``readiness_source run`` overlaps a scheduled pull.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from readiness.projects.vocabulary import Stage
from readiness.security.egress import EgressRefused, deny_networks, destination, http_client
from readiness.telemetry.models import MetricPoint, MetricSource
from readiness.telemetry.push_rules import LABEL_KEY_RE, MAX_LABEL_VALUE, MAX_LABELS
from readiness.telemetry.services import evaluation_request
from readiness.telemetry.sources.auth import auth_headers
from readiness.telemetry.sources.exchange import SourceError
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


def last_points(source: MetricSource, *, now: datetime) -> dict[str, datetime | None]:
    """Per query's metric, the newest point this source stored for it, within the 24 h a pull
    catches up (older ones make no difference to the window)."""
    since = now - timedelta(hours=24, minutes=1)
    newest: dict[str, datetime | None] = {}
    for metric in source.queries:
        # The (project, metric, ts) index read backwards: it stops at the source's newest point.
        newest[metric] = (
            MetricPoint.objects.filter(project_id=source.project_id, metric=metric, source=source.label)
            .filter(ts__gt=since)
            .order_by("-ts")
            .values_list("ts", flat=True)
            .first()
        )
    return newest


def source_read(
    source: MetricSource, *, now: datetime, last: dict[str, datetime | None] | None = None
) -> PullResult:
    """Read ``source`` once, storing nothing: the points a pull now would store. Never raises for
    anything the source does; ``last`` (from ``last_points``) is read here when not given."""
    result = PullResult()
    started = time.monotonic()
    try:
        headers = auth_headers(auth=source.auth or None)
        with source_client(source.url) as (client, url):
            if source.kind == MetricSource.Kind.PROMETHEUS:
                last = last_points(source, now=now) if last is None else last
                _read_prometheus(source, client, url, headers, now, last, started, result)
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


def source_store(*, source: MetricSource, result: PullResult, now: datetime) -> int:
    """Store a read's new points and record its outcome on the source, in one transaction. Returns the
    number of points stored."""
    with transaction.atomic():
        # The lock orders this store after any other of the same source (see the module's docstring).
        locked = MetricSource.objects.select_for_update().filter(pk=source.pk).first()
        if locked is None:  # deleted while it was being read
            return 0
        fresh = _not_stored(locked, result.points, now=now)
        MetricPoint.objects.bulk_create(
            [
                MetricPoint(
                    project_id=locked.project_id,
                    metric=point.metric,
                    ts=point.ts,
                    value=point.value,
                    labels=point.labels,
                    source=locked.label,
                )
                for point in fresh
            ],
            batch_size=2_000,
        )
        state: dict[str, object] = {"last_pull_at": now, "points_stored": F("points_stored") + len(fresh)}
        if result.errors:
            state["last_error"] = result.error
            # The failing run began at its first failure; later failures keep that time.
            state["failing_since"] = locked.failing_since or now
        else:
            state.update(last_success_at=now, last_error="", failing_since=None)
        MetricSource.objects.filter(pk=locked.pk).update(**state)
        if fresh:
            evaluation_request(project_id=locked.project_id)
    return len(fresh)


def _not_stored(source: MetricSource, points: list[PulledPoint], *, now: datetime) -> list[PulledPoint]:
    if not points:
        return []
    if source.kind == MetricSource.Kind.PROMETHEUS:
        newest = last_points(source, now=now)
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
    claimed: list[MetricSource] = []
    for source in due:
        interval = timedelta(seconds=source.interval)
        following = source.next_pull_at + interval
        if following <= now:
            following = now + interval
        won = MetricSource.objects.filter(pk=source.pk, next_pull_at=source.next_pull_at).update(
            next_pull_at=following
        )
        if won == 1:
            source.next_pull_at = following
            claimed.append(source)
    return claimed


def sources_pull(
    sources: list[MetricSource],
    *,
    now: datetime,
    concurrency: int,
    read: Callable[..., PullResult] = source_read,
) -> CycleReport:
    """Read ``sources`` at most ``concurrency`` at once, then store each one's points."""
    if not sources:
        return CycleReport(pulled=0, failed=0, stored=0, seconds=0.0)
    started = time.perf_counter()
    # The database is read here, not in the reading threads (which would each open a connection).
    last = {s.pk: last_points(s, now=now) for s in sources if s.kind == MetricSource.Kind.PROMETHEUS}
    with ThreadPoolExecutor(max_workers=min(concurrency, len(sources)), thread_name_prefix="pull") as pool:
        results = list(pool.map(lambda s: read(s, now=now, last=last.get(s.pk, {})), sources))
    stored = sum(source_store(source=s, result=r, now=now) for s, r in zip(sources, results, strict=True))
    failed = sum(1 for r in results if r.errors)
    seconds = round(time.perf_counter() - started, 3)
    log.info(
        "pulled %d sources in %.2f s: %d failed, %d points stored", len(sources), seconds, failed, stored
    )
    return CycleReport(pulled=len(sources), failed=failed, stored=stored, seconds=seconds)


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
    return result, source_store(source=source, result=result, now=now)


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
