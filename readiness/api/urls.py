"""The REST API v1 (PRODUCT.md §3), mounted at ``/api/v1/``."""

from __future__ import annotations

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from readiness.api import views_act, views_read
from readiness.api.exceptions import api_not_found

urlpatterns = [
    # --- Push ---------------------------------------------------------------------------------------
    # POST metrics (readiness.api.push.MetricsPushView) is wired in readiness/urls.py, before this
    # module's include; a push URL added here instead must come before the catch-all at the end.
    # --- Read ---------------------------------------------------------------------------------------
    path("projects/", views_read.ProjectListApi.as_view(), name="api-projects"),
    path("projects/<slug:slug>/", views_read.ProjectDetailApi.as_view(), name="api-project"),
    path("projects/<slug:slug>/scorecard", views_read.ScorecardApi.as_view(), name="api-scorecard"),
    path(
        "projects/<slug:slug>/scorecards",
        views_read.ScorecardHistoryApi.as_view(),
        name="api-scorecard-history",
    ),
    path("projects/<slug:slug>/metrics/<str:metric>", views_read.MetricApi.as_view(), name="api-metric"),
    path("projects/<slug:slug>/gate", views_read.GateApi.as_view(), name="api-gate"),
    # --- Act ----------------------------------------------------------------------------------------
    path(
        "projects/<slug:slug>/attestations",
        views_act.AttestationCreateApi.as_view(),
        name="api-attestations",
    ),
    path("projects/<slug:slug>/signoffs", views_act.SignOffCreateApi.as_view(), name="api-signoffs"),
    path("projects/<slug:slug>/waivers", views_act.WaiverRequestApi.as_view(), name="api-waivers"),
    path("waivers/<int:waiver_id>/approve", views_act.WaiverApproveApi.as_view(), name="api-waiver-approve"),
    path("waivers/<int:waiver_id>/reject", views_act.WaiverRejectApi.as_view(), name="api-waiver-reject"),
    path(
        "projects/<slug:slug>/criteria/<str:key>/not-applicable",
        views_act.CriterionNotApplicableApi.as_view(),
        name="api-criterion-not-applicable",
    ),
    # --- Documentation ------------------------------------------------------------------------------
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's start-up script as a file (?script), not inline: the
    # Content-Security-Policy (script-src 'self') refuses inline scripts.
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    # Last: any other URL under /api/v1/ is a 404 in the API's error shape, not an HTML page.
    re_path(r"^.*$", api_not_found),
]
