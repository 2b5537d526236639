"""Health-check targets and metric points in the admin console."""

from __future__ import annotations

from django.contrib import admin

from readiness.audit.admin import ReadOnlyModelAdmin
from readiness.telemetry.models import HealthCheck, IngestBatch, MetricPoint

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
