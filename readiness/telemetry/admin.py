"""Health-check targets, pull sources and metric points in the admin console."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils import timezone

from readiness.audit.admin import ReadOnlyModelAdmin
from readiness.audit.services import audit_record, audit_snapshot
from readiness.telemetry.models import HealthCheck, IngestBatch, MetricPoint, MetricSource
from readiness.telemetry.pulls import pull_summary, source_read

# What the prober writes after each probe: shown, never typed in.
PROBE_RESULT_FIELDS = ("last_probe_at", "last_up", "last_reason")


class HealthCheckInline(admin.TabularInline):
    model = HealthCheck
    fields = (
        "name",
        "url",
        "method",
        "expected_status",
        "interval",
        "timeout",
        "enabled",
        "last_up",
        "last_probe_at",
    )
    readonly_fields = ("last_up", "last_probe_at")
    extra = 0
    show_change_link = True


@admin.register(HealthCheck)
class HealthCheckAdmin(admin.ModelAdmin):
    list_display = ("name", "project", "url", "interval", "enabled", "last_up", "last_probe_at")
    list_filter = ("enabled", "last_up", "project")
    search_fields = ("name", "url", "project__slug")
    list_select_related = ("project",)
    autocomplete_fields = ("project",)
    fieldsets = (
        (None, {"fields": ("project", "name", "url", "enabled")}),
        (
            "Probe",
            {
                "fields": (
                    ("method", "expected_status"),
                    "expected_body_contains",
                    ("interval", "timeout"),
                    "next_probe_at",
                )
            },
        ),
        ("Last result", {"fields": PROBE_RESULT_FIELDS}),
    )
    readonly_fields = PROBE_RESULT_FIELDS


@admin.register(MetricPoint)
class MetricPointAdmin(ReadOnlyModelAdmin):
    """Read-only, for looking at what a project pushed; the API and the prober write points."""

    list_display = ("metric", "project", "ts", "value", "labels", "source")
    list_filter = ("project",)
    # Exact match only: a LIKE over this table would scan it whole.
    search_fields = ("=metric",)
    list_select_related = ("project",)
    # Newest received first by primary key: ordering by ts would sort the whole table, while the
    # bigserial id is already in arrival order.
    ordering = ("-id",)
    # The table grows by millions of rows; skip the second COUNT(*) over all of it on filtered pages.
    show_full_result_count = False


@admin.register(IngestBatch)
class IngestBatchAdmin(ReadOnlyModelAdmin):
    """Accepted pushes: whether each was applied, and why the database refused one (``failed``)."""

    list_display = ("id", "project", "source", "state", "accepted", "received_at", "processed_at", "error")
    list_filter = ("state", "project")
    search_fields = ("=id", "idempotency_key")
    list_select_related = ("project",)
    ordering = ("-received_at",)
    # The rows themselves are COPY text: of no use on a page, and up to megabytes each.
    exclude = ("rows",)
    show_full_result_count = False


# What the pull job writes after each pull: shown, never typed in.
PULL_RESULT_FIELDS = ("last_pull_at", "last_success_at", "last_error", "failing_since", "points_stored")


@admin.register(MetricSource)
class MetricSourceAdmin(admin.ModelAdmin):
    """Pull sources (PRODUCT.md §8). The admin console is for admins only, as the sources are: they
    decide which numbers a project is judged on. Every change is audited; "Test" reads a source once
    and shows what it would store, storing nothing."""

    list_display = ("name", "project", "kind", "url", "interval", "enabled", "last_success_at", "last_error")
    list_filter = ("kind", "enabled", "project")
    search_fields = ("name", "url", "project__slug")
    list_select_related = ("project",)
    autocomplete_fields = ("project",)
    change_form_template = "admin/telemetry/metricsource/change_form.html"
    actions = ["test_sources"]
    fieldsets = (
        (None, {"fields": ("project", "name", "kind", "url", "interval", "enabled")}),
        (
            "Credentials",
            {
                "fields": ("auth",),
                "description": "Names of the workers' environment variables, never secrets: "
                '{"bearer_token_env": "PROM_TOKEN"} or {"basic": {"username": "readiness", '
                '"password_env": "MLFLOW_PASSWORD"}}; empty for none.',
            },
        ),
        (
            "Prometheus",
            {
                "fields": ("queries",),
                "description": 'Metric name → PromQL: {"latency_ms": "histogram_quantile(...)"}.',
            },
        ),
        (
            "MLflow",
            {
                "fields": ("model", ("alias", "version"), "metrics"),
                "description": "The registered model, its alias (or a fixed version), and metric name → "
                'MLflow metric key: {"accuracy": "accuracy"}.',
            },
        ),
        ("Last pull", {"fields": ("next_pull_at", *PULL_RESULT_FIELDS)}),
    )
    readonly_fields = PULL_RESULT_FIELDS

    def save_model(self, request: HttpRequest, obj: MetricSource, form: Any, change: bool) -> None:
        # A JSON field emptied in the form is None, which the column refuses: empty means none.
        for name in ("auth", "queries", "metrics"):
            setattr(obj, name, getattr(obj, name) or {})
        before = audit_snapshot(MetricSource.objects.filter(pk=obj.pk).first()) if change else None
        super().save_model(request, obj, form, change)
        after = audit_snapshot(obj)
        if before != after:
            audit_record(
                action="metric_source.update" if change else "metric_source.create",
                instance=obj,
                actor=request.user,
                project=obj.project,
                before=before,
                after=after,
            )

    def delete_model(self, request: HttpRequest, obj: MetricSource) -> None:
        audit_record(
            action="metric_source.delete",
            instance=obj,
            actor=request.user,
            project=obj.project,
            before=audit_snapshot(obj),
        )
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[MetricSource]) -> None:
        for source in queryset.select_related("project"):
            self.delete_model(request, source)

    def get_urls(self) -> list[URLPattern]:
        test = path(
            "<path:object_id>/test/",
            self.admin_site.admin_view(self.test_view),
            name="telemetry_metricsource_test",
        )
        return [test, *super().get_urls()]

    def test_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Read the source once, store nothing, show what a pull would store. A GET changes nothing
        of ours, so a link (the change page's "Test" button) is enough."""
        source = get_object_or_404(MetricSource.objects.select_related("project"), pk=object_id)
        if not self.has_view_or_change_permission(request, source):
            return HttpResponse(status=403)
        result = source_read(source, now=timezone.now())
        context = {
            **self.admin_site.each_context(request),
            "title": f"Test of {source.label}",
            "opts": self.model._meta,
            "original": source,
            "source": source,
            "result": result,
            "lines": pull_summary(result),
        }
        return TemplateResponse(request, "admin/telemetry/metricsource/test.html", context)

    @admin.action(description="Test the selected sources (store nothing)")
    def test_sources(self, request: HttpRequest, queryset: QuerySet[MetricSource]) -> None:
        now = timezone.now()
        for source in queryset.select_related("project"):
            result = source_read(source, now=now)
            level = "ERROR" if result.errors else "INFO"
            self.message_user(request, f"{source.label}: {' | '.join(pull_summary(result))}", level=level)
