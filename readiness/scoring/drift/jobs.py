"""The writers of drift results. The periodic job (PRODUCT.md §4) computes every drift criterion of the
active projects, stores the result, and re-evaluates the projects whose drift status changed; the
evaluation service's ensure step stores one for a criterion that has no usable result yet.

Per criterion and run: the reference profile comes from its cache (one count query proves it current),
the current window's values come in one query, and the pure statistics of ``drift.stats`` do the rest.
The evaluation then reads the stored result like any other measurement (``drift.selectors``), and the
scorecard's drift chart reads the very row the evaluation read: nothing outside this module computes
a drift statistic for the database's data.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from django.db import connection, transaction
from django.db.models import F, OuterRef, QuerySet, Subquery
from django.utils import timezone

from readiness.projects.models import Project
from readiness.scoring.drift.models import (
    DriftReference,
    DriftResult,
    definition_fingerprint,
    reference_fingerprint,
)
from readiness.scoring.drift.selectors import drift_results_usable
from readiness.scoring.drift.stats import ReferenceProfile, drift_statistic, reference_profile
from readiness.scoring.engine import Measurement, drift_status, parse_window
from readiness.scoring.models import Criterion, Kind
from readiness.scoring.requests import evaluation_request
from readiness.scoring.specs import criterion_spec
from readiness.telemetry.aggregates import window_points
from readiness.telemetry.models import MetricPoint

log = logging.getLogger(__name__)

# PSI bins the reference on its deciles, and KS needs a sample on both sides to mean anything:
# below this many points on either side the drift result is `missing`, not a guess.
DRIFT_MIN_SAMPLES = 10
# Results are the history behind the dashboard's drift charts; a month of them is plenty.
DRIFT_RESULT_RETENTION = timedelta(days=30)
# Results are stored, and re-evaluations requested, per chunk: a run cut short by its time limit keeps
# what it computed, and the next run starts with the criteria it did not reach (oldest result first).
CHUNK = 20


@dataclass(frozen=True)
class DriftRun:
    computed: int
    reevaluated: list[int]  # ids of the projects whose drift status changed
    pruned: int


def sample_values(points: QuerySet[MetricPoint]) -> np.ndarray:
    """The values of a window's points, in one query.

    On PostgreSQL the database packs them into one bytea of big-endian float8 (``float8send``), which
    numpy reads as it is: no row objects, no float parsing, about half the time of iterating rows. SQLite
    has no such function; there the rows are read one by one."""
    if connection.vendor != "postgresql":
        return np.fromiter(points.values_list("value", flat=True), dtype=float)
    sql, params = points.values_list("value").query.sql_with_params()
    # The inner SQL is the ORM's own, its values still bound as parameters.
    packing = f"SELECT string_agg(float8send(value), ''::bytea) FROM ({sql}) AS window_values"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(packing, params)
        (packed,) = cursor.fetchone()
    return np.frombuffer(packed, dtype=">f8").astype(float) if packed else np.empty(0)


def drift_reference_profile(*, criterion: Criterion, now: datetime) -> tuple[ReferenceProfile | None, int]:
    """The reference period's profile and sample count, from the cache when it is still current.

    Metric points are only ever appended (and pruned by retention), so the count of the period's points
    tells whether the cached sample is still the period's sample: a backfill of reference data pushed
    after the criterion was created changes the count and rebuilds the profile. A period that has not
    ended yet is never cached: it is still filling.
    """
    assert criterion.reference_start is not None and criterion.reference_end is not None
    fingerprint = reference_fingerprint(criterion)
    points = window_points(
        project_id=criterion.project_id,
        metric=criterion.metric,
        start=criterion.reference_start,
        end=criterion.reference_end,
        labels=criterion.labels,
        kinds=criterion.sources or (),
    )
    cached = DriftReference.objects.filter(criterion=criterion, fingerprint=fingerprint).first()
    if cached is not None and points.count() == cached.count:
        return (cached.profile() if cached.count else None), cached.count
    values = sample_values(points)
    profile = reference_profile(values) if values.size else None
    if criterion.reference_end <= now:
        sample = profile.sorted_sample if profile is not None else np.empty(0)
        row = DriftReference(
            criterion=criterion,
            fingerprint=fingerprint,
            count=int(values.size),
            sample=sample.astype("<f8").tobytes(),
            edges=profile.edges.tolist() if profile is not None else [],
            shares=profile.shares.tolist() if profile is not None else [],
            computed_at=now,
        )
        # An upsert: the job and an evaluation's ensure step may build the same profile at once.
        DriftReference.objects.bulk_create(
            [row],
            update_conflicts=True,
            unique_fields=["criterion"],
            update_fields=["fingerprint", "count", "sample", "edges", "shares", "computed_at"],
        )
    return profile, int(values.size)


def drift_result_compute(*, criterion: Criterion, now: datetime) -> DriftResult:
    """The drift statistic of one criterion at ``now`` (not saved): PSI or the KS p-value of the window
    ``(now - window, now]`` against the reference period, or ``missing`` with the reason."""
    base = {
        "criterion": criterion,
        "computed_at": now,
        "method": criterion.method,
        "definition": definition_fingerprint(criterion),
    }
    try:
        window = parse_window(criterion.window)
    except ValueError as exc:  # the database does not check the window's text; the engine must not pass it
        return DriftResult(**base, status="missing", reference_count=0, current_count=0, reason=str(exc))
    profile, reference_count = drift_reference_profile(criterion=criterion, now=now)
    current_points = window_points(
        project_id=criterion.project_id,
        metric=criterion.metric,
        start=now - window,
        end=now,
        labels=criterion.labels,
        kinds=criterion.sources or (),
    )
    current = sample_values(current_points)
    counts = {"reference_count": reference_count, "current_count": int(current.size)}
    needed = max(DRIFT_MIN_SAMPLES, criterion.min_samples)
    if profile is None or reference_count < needed or current.size < needed:
        accepted = f" (from {', '.join(criterion.sources)})" if criterion.sources else ""
        reason = (
            f"drift of {criterion.metric}{accepted} needs {needed} samples on each side; "
            f"reference has {reference_count}, current window has {current.size}"
        )
        bins = {"edges": profile.edges.tolist(), "reference": profile.shares.tolist()} if profile else None
        return DriftResult(**base, **counts, status="missing", reason=reason, bins=bins)
    statistic = drift_statistic(criterion.method, profile, current)
    measurement = Measurement(value=statistic.value, count=min(reference_count, current.size), as_of=now)
    return DriftResult(
        **base,
        **counts,
        status=drift_status(criterion_spec(criterion), measurement),
        value=statistic.value,
        sources=_sources(criterion, current_points),
        bins={
            "edges": profile.edges.tolist(),
            "reference": profile.shares.tolist(),
            "current": statistic.current_shares.tolist(),
        },
    )


def drift_results_ensure(*, project: Project, now: datetime) -> list[DriftResult]:
    """Store a result, computed at ``now``, for each drift criterion of ``project`` that has none the
    evaluation may use at ``now`` (``drift_results_usable``): one the job has not reached yet — just
    created or edited — or every one when the job has stalled for longer than the results' maximum age.

    The evaluation service calls this before it reads its inputs, inside its own transaction, so the
    evaluation and the scorecard's chart then read the same stored row. Returns the results stored."""
    criteria = list(Criterion.objects.filter(project=project, kind=Kind.DRIFT))
    stored = drift_results_usable(criteria=criteria, now=now)
    computed = [drift_result_compute(criterion=c, now=now) for c in criteria if c.pk not in stored]
    return DriftResult.objects.bulk_create(computed)


def _sources(criterion: Criterion, current: QuerySet[MetricPoint]) -> list[str]:
    """The distinct sources of the points a drift value compares: the current window's and the
    reference period's (PRODUCT.md §8)."""
    assert criterion.reference_start is not None and criterion.reference_end is not None
    reference = window_points(
        project_id=criterion.project_id,
        metric=criterion.metric,
        start=criterion.reference_start,
        end=criterion.reference_end,
        labels=criterion.labels,
        kinds=criterion.sources or (),
    )
    found = set(current.order_by().values_list("source", flat=True).distinct())
    found |= set(reference.order_by().values_list("source", flat=True).distinct())
    return sorted(found)


def drift_results_compute(*, now: datetime | None = None) -> DriftRun:
    """The periodic job: every drift criterion of every active project, oldest result first."""
    now = now or timezone.now()
    newest = DriftResult.objects.filter(criterion=OuterRef("pk")).order_by("-computed_at", "-id")
    criteria = list(
        Criterion.objects.filter(kind=Kind.DRIFT, project__in=Project.objects.active())
        .annotate(
            last_status=Subquery(newest.values("status")[:1]),
            last_computed_at=Subquery(newest.values("computed_at")[:1]),
        )
        .order_by(F("last_computed_at").asc(nulls_first=True), "id")
    )
    reevaluated: list[int] = []
    for start in range(0, len(criteria), CHUNK):
        chunk = criteria[start : start + CHUNK]
        results = [drift_result_compute(criterion=criterion, now=now) for criterion in chunk]
        changed = sorted(
            {c.project_id for c, result in zip(chunk, results, strict=True) if result.status != c.last_status}
        )
        with transaction.atomic():
            DriftResult.objects.bulk_create(results)
            for project_id in changed:
                # Coalesced like every other trigger; enqueued once this chunk is committed.
                evaluation_request(project_id=project_id, delay=0)
        reevaluated.extend(changed)
    pruned, _ = DriftResult.objects.filter(computed_at__lt=now - DRIFT_RESULT_RETENTION).delete()
    if criteria:
        log.info("drift: %d criteria computed, %d projects re-evaluated", len(criteria), len(reevaluated))
    return DriftRun(computed=len(criteria), reevaluated=sorted(set(reevaluated)), pruned=pruned)
