"""Data coming in: metric points (pushed or probed) and the health-check targets that probe them."""

from __future__ import annotations

from django.core.validators import MinValueValidator, URLValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from readiness.telemetry.provenance import MAX_SOURCE


class MetricPoint(models.Model):
    """One observation of one metric of one project.

    The id is a bigserial, so among points with the same ``ts`` the last received has the highest id
    (the tie rule of ``latest`` in PRODUCT.md §3).
    """

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    metric = models.CharField(max_length=100)
    ts = models.DateTimeField()
    value = models.FloatField()
    labels = models.JSONField(default=dict, blank=True)
    # Provenance (PRODUCT.md §8): "kind:name", e.g. "probe:api" or "push:ci-pipeline" (telemetry.provenance).
    source = models.CharField(max_length=MAX_SOURCE)

    class Meta:
        # Every windowed aggregation is "this project, this metric, ts in (now - window, now]": one
        # range scan of this index. Labels are filtered on the rows the range returns.
        indexes = [models.Index(fields=["project", "metric", "ts"], name="metricpoint_window")]

    def __str__(self) -> str:
        return f"{self.metric}={self.value} @ {self.ts:%Y-%m-%d %H:%M:%S}"


class HealthCheck(models.Model):
    """A scheduled HTTP probe of a project's service; each probe writes health.up and
    health.latency_ms points labelled with the target's name."""

    class Method(models.TextChoices):
        GET = "GET"
        HEAD = "HEAD"

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="health_checks")
    name = models.CharField(max_length=100)
    # http(s) only: probes refuse anything else, so the admin and imports refuse it on entry too.
    url = models.URLField(max_length=500, validators=[URLValidator(schemes=["http", "https"])])
    method = models.CharField(max_length=4, choices=Method.choices, default=Method.GET)
    expected_status = models.PositiveSmallIntegerField(default=200)
    expected_body_contains = models.CharField(max_length=200, blank=True)
    timeout = models.FloatField(default=5.0, validators=[MinValueValidator(0.1)])
    # At least 30 s: probing faster adds load on model services without changing what a 24h or 30d
    # availability window says.
    interval = models.PositiveIntegerField(default=60, validators=[MinValueValidator(30)])
    enabled = models.BooleanField(default=True)
    next_probe_at = models.DateTimeField(default=timezone.now)
    last_probe_at = models.DateTimeField(null=True, blank=True)
    last_up = models.BooleanField(null=True, blank=True)
    last_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["project", "name"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="healthcheck_name_unique_per_project"),
            models.CheckConstraint(condition=Q(interval__gte=30), name="healthcheck_interval_min_30s"),
            models.CheckConstraint(condition=Q(timeout__gt=0), name="healthcheck_timeout_positive"),
            models.CheckConstraint(condition=Q(method__in=["GET", "HEAD"]), name="healthcheck_method_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.url})"


class IngestBatch(models.Model):
    """One accepted push: the outbox between the API's 202 and the metric table.

    The API stores the validated points here (already encoded as PostgreSQL COPY rows) and commits
    before answering 202, so an acknowledged batch survives a broker outage, a worker crash and a
    restart. A worker applies it exactly once: it locks the row, copies the rows into MetricPoint and
    marks the batch done in the same transaction.
    """

    class State(models.TextChoices):
        PENDING = "pending"
        DONE = "done"
        # The database refused its rows although validation passed them: set aside with the error
        # so it never blocks the batches behind it; its rows are kept for a person to look at.
        FAILED = "failed"

    id = models.UUIDField(primary_key=True)
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    token = models.ForeignKey(
        "projects.ProjectToken", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    idempotency_key = models.CharField(max_length=200, null=True, blank=True)
    # The provenance every point of the batch is stored with ("push:<token name>", "probe:<check>"...).
    source = models.CharField(max_length=MAX_SOURCE)
    body_sha256 = models.CharField(max_length=64)
    accepted = models.PositiveIntegerField()
    # Tab-separated COPY rows (metric, ts, value, labels); cleared once applied.
    rows = models.BinaryField(null=True, blank=True)
    state = models.CharField(max_length=8, choices=State.choices, default=State.PENDING)
    received_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["received_at"]
        indexes = [
            # The sweeper's and the drain's question: which batches are still pending, oldest first.
            models.Index(fields=["received_at"], condition=Q(state="pending"), name="ingestbatch_pending"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="ingestbatch_idempotency_key_unique",
            ),
            models.CheckConstraint(
                condition=Q(state__in=["pending", "done", "failed"]), name="ingestbatch_state_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"batch {self.id} ({self.accepted} points, {self.state})"


class OtlpSeries(models.Model):
    """The previous data point of one cumulative OTLP histogram series (PRODUCT.md §8 "OTLP receiver").

    The receiver maps a cumulative histogram's difference from the previous data point of its
    series, as the Collector's ``cumulativetodelta`` does. Kept in the database, not in a process:
    the difference survives restarts and is the same whichever gunicorn process takes the next
    export. Read and written with a row lock inside the transaction that stores the export's batch
    (``readiness.telemetry.otlp_memory``), so two exports of one series never count an interval twice.
    """

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=64)  # otlp.series_key: a SHA-256 of resource, scope, metric, attributes
    # HistogramState.as_dict(); null for a row created to hold the lock before any state was stored.
    state = models.JSONField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "key"], name="otlpseries_key_unique_per_project"),
        ]

    def __str__(self) -> str:
        return f"OTLP series {self.key[:12]} of project {self.project_id}"
