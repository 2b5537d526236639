from __future__ import annotations

from django.contrib import admin
from django.urls import path
from django.views.generic import RedirectView

from readiness.api.push import MetricsPushView

admin.site.site_header = "Readiness admin console"
admin.site.site_title = "Readiness"
admin.site.index_title = "Checklists, projects and audit"

urlpatterns = [
    path("admin/", admin.site.urls),
    # The ingestion fast path, outside the DRF router: see readiness/api/push.py.
    path("api/v1/metrics", MetricsPushView.as_view(), name="metrics-push"),
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
]
