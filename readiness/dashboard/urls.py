from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import path

from readiness.dashboard.portfolio import views as portfolio_views
from readiness.dashboard.review import views as review_views
from readiness.dashboard.scorecard import actions
from readiness.dashboard.scorecard import views as scorecard_views

app_name = "dashboard"

urlpatterns = [
    path("", portfolio_views.portfolio, name="portfolio"),
    path("projects/<slug:slug>/", scorecard_views.scorecard, name="scorecard"),
    # The scorecard's actions (readiness/dashboard/scorecard/actions.py): POST only, each redirects back.
    path("projects/<slug:slug>/criteria/<str:key>/attest/", actions.attest, name="attest"),
    path(
        "projects/<slug:slug>/criteria/<str:key>/not-applicable/",
        actions.not_applicable,
        name="not-applicable",
    ),
    path("projects/<slug:slug>/criteria/<str:key>/applicable/", actions.applicable, name="applicable"),
    path("projects/<slug:slug>/criteria/<str:key>/waivers/", actions.waiver_request, name="waiver-request"),
    path(
        "projects/<slug:slug>/waivers/<int:waiver_id>/approve/", actions.waiver_approve, name="waiver-approve"
    ),
    path("projects/<slug:slug>/waivers/<int:waiver_id>/reject/", actions.waiver_reject, name="waiver-reject"),
    path("projects/<slug:slug>/dimensions/<str:dimension>/signoff/", actions.signoff, name="signoff"),
    # The review pages and the matrix export (readiness/dashboard/review/views.py).
    path("projects/<slug:slug>/history/", review_views.history, name="history"),
    path("projects/<slug:slug>/report/", review_views.report, name="report"),
    path("projects/<slug:slug>/audit/", review_views.audit, name="audit"),
    path("portfolio.csv", review_views.portfolio_csv, name="portfolio-csv"),
    path("portfolio.json", review_views.portfolio_json, name="portfolio-json"),
    path(
        "login/",
        auth_views.LoginView.as_view(
            template_name="registration/login.html",
            redirect_authenticated_user=True,
            next_page="dashboard:portfolio",
        ),
        name="login",
    ),
    # Django's LogoutView accepts POST only: a link (or a prefetching browser) cannot log anyone out.
    path("logout/", auth_views.LogoutView.as_view(next_page="dashboard:login"), name="logout"),
]
