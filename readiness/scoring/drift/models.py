"""What the drift job stores: each run's result per drift criterion, and the cached profile of each
criterion's reference period; and the fingerprints that say which definition a stored row belongs to.

``readiness.scoring.models`` (the app's model module) imports these models at its top, so the app
registry knows them under the ``scoring`` label; this module imports nothing of that one at runtime.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING

import numpy as np
from django.db import models
from django.db.models import Q

from readiness.scoring.drift.stats import ReferenceProfile
from readiness.scoring.facts import Measurement

if TYPE_CHECKING:
    from readiness.scoring.models import Criterion

RESULT_STATUSES = ("pass", "warn", "fail", "missing")


def _digest(parts: list[object]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def reference_fingerprint(criterion: Criterion) -> str:
    """What the reference sample depends on: a change to any of it makes the cached profile a stranger."""
    return _digest(
        [
            criterion.project_id,
            criterion.metric,
            criterion.labels or {},
            criterion.reference_start.isoformat() if criterion.reference_start else None,
            criterion.reference_end.isoformat() if criterion.reference_end else None,
            *([criterion.sources] if criterion.sources else []),  # absent when empty: old profiles stay valid
        ]
    )


def definition_fingerprint(criterion: Criterion) -> str:
    """What a drift value depends on (thresholds excluded: the engine judges the value with the current
    ones), so a result computed for an older definition is never read as current."""
    return _digest(
        [reference_fingerprint(criterion), criterion.window, criterion.method, criterion.min_samples]
    )


class DriftReference(models.Model):
    """The reference period's sorted sample, decile edges and bin shares of one drift criterion.

    A reference period is fixed, so reading and sorting its (often tens of thousands of) points on every
    run would be wasted work: the profile is computed once and reused while ``fingerprint`` — project,
    metric, labels and the period's bounds — still matches the criterion. Editing any of those makes the
    stored profile a stranger, and the next run replaces it.
    """

    criterion = models.OneToOneField(
        "scoring.Criterion", on_delete=models.CASCADE, related_name="drift_reference"
    )
    fingerprint = models.CharField(max_length=64)
    count = models.PositiveIntegerField()
    # Little-endian float64, ascending: KS needs every value, and bytes load far faster than rows.
    sample = models.BinaryField()
    edges = models.JSONField()
    shares = models.JSONField()
    computed_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"reference of criterion {self.criterion_id} ({self.count} points)"

    def profile(self) -> ReferenceProfile:
        return ReferenceProfile(
            sorted_sample=np.frombuffer(bytes(self.sample), dtype="<f8"),
            edges=np.asarray(self.edges, dtype=float),
            shares=np.asarray(self.shares, dtype=float),
        )


class DriftResult(models.Model):
    """One run of the drift job for one criterion: the statistic, or why there is none.

    The evaluation reads the newest one like any other measurement. ``bins`` holds the reference's
    decile edges and the reference and current proportions per bin, so the dashboard can chart the two
    distributions side by side, for KS criteria too.
    """

    criterion = models.ForeignKey("scoring.Criterion", on_delete=models.CASCADE, related_name="drift_results")
    computed_at = models.DateTimeField()
    method = models.CharField(max_length=8)
    # The definition it was computed for (``definition_fingerprint``): a result computed
    # before the criterion's window or reference changed must not be read as if it were current.
    definition = models.CharField(max_length=64)
    # The drift check's own status under the thresholds of the moment (before severity, waivers, N/A):
    # the job re-evaluates a project only when this changes from one run to the next.
    status = models.CharField(max_length=8)
    value = models.FloatField(null=True, blank=True)
    reference_count = models.PositiveIntegerField()
    current_count = models.PositiveIntegerField()
    reason = models.TextField(blank=True)  # why value is None; empty when there is a value
    bins = models.JSONField(null=True, blank=True)  # {"edges": [9], "reference": [10], "current": [10]}
    # The distinct sources of the points compared, reference and current window (PRODUCT.md §8).
    sources = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-computed_at", "-id"]
        indexes = [models.Index(fields=["criterion", "-computed_at"], name="driftresult_latest")]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=RESULT_STATUSES), name="driftresult_status_valid"),
            models.CheckConstraint(condition=Q(method__in=["psi", "ks"]), name="driftresult_method_valid"),
            # A result is a value or a reason, never neither: "missing" always says why.
            models.CheckConstraint(
                condition=Q(value__isnull=False) | ~Q(reason=""), name="driftresult_value_or_reason"
            ),
        ]

    def __str__(self) -> str:
        shown = self.reason if self.value is None else f"{self.method}={self.value:.4g}"
        return f"drift of criterion {self.criterion_id} at {self.computed_at:%Y-%m-%d %H:%M}: {shown}"

    def measurement(self) -> Measurement:
        return Measurement(
            value=self.value,
            count=min(self.reference_count, self.current_count),
            as_of=self.computed_at if self.value is not None else None,
            reason=self.reason or None,
            sources=tuple(self.sources or ()),
        )
