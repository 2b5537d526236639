"""Data coming in: metric points (pushed or probed) and the health-check targets that probe them."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.core.validators import MinValueValidator, URLValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from readiness.telemetry.provenance import MAX_SOURCE, source_label


class MetricPoint(models.Model):
    """One observation of one metric of one project.

    The id is a bigserial, so among points with the same ``ts`` the last received has the highest id
    (the tie rule of ``latest`` in PRODUCT.md §3).
    """

    # No index of its own: "metricpoint_window" starts with the project (a project's deletion uses it),
    # and a second one misled the planner into scanning every metric of a project for one (migration 0011).
    project = models.ForeignKey(
        "projects.Project", on_delete=models.CASCADE, related_name="+", db_index=False
    )
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


class MetricSource(models.Model):
    """A place Readiness pulls a project's metrics from (PRODUCT.md §8): a Prometheus server (each of
    ``queries``, metric name → PromQL, becomes points of that metric) or an MLflow tracking server (the
    ``metrics`` of the run behind ``model``'s ``alias`` or fixed ``version``).

    Credentials are never stored: ``auth`` names environment variables of the workers. The pull job
    writes the state fields (``next_pull_at`` ... ``points_stored``); people write the rest.
    """

    class Kind(models.TextChoices):
        PROMETHEUS = "prometheus"
        MLFLOW = "mlflow"

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="metric_sources")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    url = models.URLField(max_length=500, validators=[URLValidator(schemes=["http", "https"])])
    # At least 30 s, like probes: a pull asks for a whole range, so pulling faster only adds load.
    interval = models.PositiveIntegerField(default=60, validators=[MinValueValidator(30)])
    # {} | {"bearer_token_env": NAME} | {"basic": {"username": ..., "password_env": NAME}}
    auth = models.JSONField(default=dict, blank=True)
    # Prometheus: our metric name → PromQL expression.
    queries = models.JSONField(default=dict, blank=True)
    # MLflow: the registered model, the alias or fixed version designating its version, and our metric
    # name → the MLflow metric key.
    model = models.CharField(max_length=250, blank=True)
    alias = models.CharField(max_length=250, blank=True)
    version = models.CharField(max_length=20, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    enabled = models.BooleanField(default=True)
    next_pull_at = models.DateTimeField(default=timezone.now)
    last_pull_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    # When the current run of failures began (the scorecard's "failing since 10:02"); None when the
    # last pull succeeded.
    failing_since = models.DateTimeField(null=True, blank=True)
    points_stored = models.BigIntegerField(default=0)
    # Prometheus: per query's metric, the timestamp of the newest point this source stored for it
    # (ISO 8601). Written in the transaction that stores the points, under the row's lock, so it is
    # exactly "the last point stored": the next pull asks from one step after it, and keeps only
    # samples after it, without reading the metric table.
    pulled_until = models.JSONField(default=dict, blank=True, editable=False)

    class Meta:
        ordering = ["project", "name"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="metricsource_name_unique_per_project"),
            models.CheckConstraint(condition=Q(interval__gte=30), name="metricsource_interval_min_30s"),
            models.CheckConstraint(
                condition=Q(kind__in=["prometheus", "mlflow"]), name="metricsource_kind_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind} {self.url})"

    @property
    def label(self) -> str:
        """The provenance of the points it stores: ``prometheus:<name>`` or ``mlflow:<name>``."""
        return source_label(self.kind, self.name)

    def status_line(self, now: datetime) -> str:
        """The source's state in one line for the scorecard: "prod-prometheus: last pulled 40 s ago",
        "prod-prometheus: failing since 10:02: connection refused"."""
        if not self.enabled:
            return f"{self.name}: disabled"
        if self.failing_since is not None:
            since = timezone.localtime(self.failing_since)
            shown = (
                f"{since:%H:%M}" if now - self.failing_since < timedelta(hours=20) else f"{since:%d %b %H:%M}"
            )
            return f"{self.name}: failing since {shown}: {self.last_error}"
        if self.last_success_at is None:
            return f"{self.name}: not pulled yet"
        return f"{self.name}: last pulled {_elapsed(now - self.last_success_at)} ago"

    def definition(self) -> dict[str, object]:
        """What people configure, as checks as code writes it (the keys a kind does not use left out)."""
        entry: dict[str, object] = {"name": self.name, "kind": self.kind, "url": self.url}
        entry["interval"] = self.interval
        if self.auth:
            entry["auth"] = self.auth
        if self.kind == self.Kind.PROMETHEUS:
            entry["queries"] = dict(self.queries)
        else:
            entry["model"] = self.model
            if self.alias:
                entry["alias"] = self.alias
            else:
                # A number, as people write it: the import reads it back as the same text.
                entry["version"] = int(self.version) if self.version.isdigit() else self.version
            entry["metrics"] = dict(self.metrics)
        return entry

    def config(self) -> dict[str, object]:
        """Every configured field, as ``source_problems`` judges it: a field a kind does not use is
        included when filled in, so a form that fills it gets told."""
        entry: dict[str, object] = {
            "name": self.name,
            "kind": self.kind,
            "url": self.url,
            "interval": self.interval,
        }
        for field in ("auth", "queries", "model", "alias", "version", "metrics"):
            if getattr(self, field):
                entry[field] = getattr(self, field)
        return entry

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        from readiness.telemetry.sources.config import source_problems

        problems = source_problems(self.config())
        if problems:
            errors: dict[str, list[str]] = {}
            for path, message in problems:
                field = path.split(".", 1)[0].split("[", 1)[0]
                field = field if field in {f.name for f in self._meta.fields} else "__all__"
                errors.setdefault(field, []).append(f"{path}: {message}" if field != path else message)
            raise ValidationError(errors)


def _elapsed(delta: timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    if seconds < 36 * 3600:
        return f"{round(seconds / 3600)} h"
    return f"{round(seconds / 86400)} days"


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


class MetricRollup(models.Model):
    """The points of one closed minute (or hour) of one series: project, metric, label set and source
    (PRODUCT.md §9). Written only by the fold (telemetry.rollups.fold), which recomputes whole minutes
    from raw points and whole hours from minute rows, so a row is always the exact summary of its period.

    ``latest_id`` is the raw point's id: the tie rule of ``latest`` (newest ts, then highest id) holds
    across rollups and raw points alike.
    """

    class Resolution(models.IntegerChoices):
        MINUTE = 60
        HOUR = 3600

    # No index of its own: "metricrollup_window" starts with the project (a project's deletion uses it),
    # and the fold writes a row per point of a sparse series (migration 0012).
    project = models.ForeignKey(
        "projects.Project", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    metric = models.CharField(max_length=100)
    labels = models.JSONField(default=dict, blank=True)
    source = models.CharField(max_length=MAX_SOURCE)
    resolution = models.PositiveIntegerField(choices=Resolution.choices)
    start = models.DateTimeField()  # the period is start <= ts < start + resolution
    count = models.BigIntegerField()
    sum = models.FloatField()
    min = models.FloatField()
    max = models.FloatField()
    latest_value = models.FloatField()
    latest_ts = models.DateTimeField()
    latest_id = models.BigIntegerField()
    # telemetry.rollups.sketch: packed (bucket key int32, count uint32) pairs, 8 bytes a bucket.
    sketch = models.BinaryField()

    class Meta:
        indexes = [
            # Every read is "this project, this metric, this resolution, start in a range".
            models.Index(fields=["project", "metric", "resolution", "start"], name="metricrollup_window"),
            # The retention job deletes by age across projects.
            models.Index(fields=["start"], name="metricrollup_start"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(resolution__in=[60, 3600]), name="metricrollup_resolution_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.metric} {self.start:%Y-%m-%d %H:%M} /{self.resolution}s ({self.count} points)"


class RollupDirtyMinute(models.Model):
    """A closed minute of a project's metric that received points after it closed (a push with an old
    ts, a backfill, a batch applied late): the next fold recomputes its rollups and its hour's."""

    project_id = models.BigIntegerField()
    metric = models.CharField(max_length=100)
    minute = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project_id", "metric", "minute"], name="rollupdirtyminute_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.metric} of project {self.project_id} at {self.minute:%Y-%m-%d %H:%M}"


class RollupWatermark(models.Model):
    """How far the fold has gone: every minute before ``folded_until`` has its rollup rows (and every
    hour before it its hour rows), except the minutes marked dirty. One row (id 1)."""

    folded_until = models.DateTimeField()

    def __str__(self) -> str:
        return f"folded until {self.folded_until:%Y-%m-%d %H:%M}"
