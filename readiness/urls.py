from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from readiness.api.otlp import OtlpMetricsView
from readiness.api.push import MetricsPushView

admin.site.site_header = "Readiness admin console"
admin.site.site_title = "Readiness"
admin.site.index_title = "Checklists, projects and audit"

urlpatterns = [
    path("admin/", admin.site.urls),
    # The ingestion fast path, outside the DRF router: see readiness/api/push.py.
    path("api/v1/metrics", MetricsPushView.as_view(), name="metrics-push"),
    # OTLP/HTTP's own path under our API (an exporter appends nothing to a per-signal endpoint).
    path("api/v1/otlp/v1/metrics", OtlpMetricsView.as_view(), name="otlp-metrics"),
    # After every other api/v1/ route: it ends in a catch-all 404 in the API's error shape.
    path("api/v1/", include("readiness.api.urls")),
    path("", include("readiness.dashboard.urls")),
]
