from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import path

from readiness.dashboard import views

app_name = "dashboard"

urlpatterns = [
    path("", views.portfolio, name="portfolio"),
    path("projects/<slug:slug>/", views.scorecard, name="scorecard"),
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
