"""Security headers and the Content-Security-Policy on pages, the API docs and the admin; and, in a real
Chromium, Swagger UI and the admin working under that policy with no violation."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

from tests.browser import chromium
from tests.conftest import Cast

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'self'; object-src 'none'"
)


def assert_security_headers(response: Any) -> None:
    assert response["Content-Security-Policy"] == CSP
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"


@pytest.mark.django_db
def test_a_page_carries_the_security_headers_and_the_policy(client: Client) -> None:
    response = client.get("/login/")
    assert response.status_code == 200
    assert_security_headers(response)


@pytest.mark.django_db
def test_an_api_response_carries_the_security_headers(client: Client) -> None:
    response = client.get("/api/v1/projects/")
    assert response.status_code == 401
    assert_security_headers(response)


@pytest.mark.django_db
def test_the_api_docs_page_loads_its_start_up_script_as_a_file_not_inline(client: Client) -> None:
    response = client.get("/api/v1/docs/")
    assert response.status_code == 200
    assert_security_headers(response)
    html = response.content.decode()
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, flags=re.S)
    assert scripts, "Swagger UI loads no script"
    for attributes, body in scripts:
        assert "src=" in attributes and body.strip() == "", attributes
    sources = re.findall(r'<script src="([^"]+)"', html)
    # Every script is ours: the sidecar's static files and the start-up script on the same origin.
    assert all(src.startswith("/") for src in sources), sources
    start_up = client.get(next(src for src in sources if "script" in src and "static" not in src))
    assert start_up.status_code == 200
    assert start_up["Content-Type"].startswith("application/javascript")
    assert b"SwaggerUIBundle" in start_up.content


def test_the_admin_carries_the_policy(admin_client: Client) -> None:
    response = admin_client.get("/admin/")
    assert response.status_code == 200
    assert_security_headers(response)


# --- In a real browser ----------------------------------------------------------------------------


@pytest.fixture
def browser(transactional_db: None) -> Iterator[Any]:
    with chromium() as launched:
        yield launched


# Recorded in the page before any of its scripts run; Chromium also reports each refusal on the console.
LISTEN_FOR_VIOLATIONS = """
window.__violations = [];
document.addEventListener('securitypolicyviolation',
    e => window.__violations.push(e.violatedDirective + ' ' + (e.blockedURI || 'inline')));
"""


def open_page(browser: Any, url: str, errors: list[str], cookies: list[dict[str, Any]] | None = None) -> Any:
    context = browser.new_context()
    if cookies:
        context.add_cookies(cookies)
    context.add_init_script(LISTEN_FOR_VIOLATIONS)
    page = context.new_page()
    page.set_default_timeout(15_000)
    # A failed load is reported by its response below, with its URL (the console message has none).
    page.on(
        "console",
        lambda message: (
            errors.append(message.text)
            if message.type == "error" and not message.text.startswith("Failed to load resource")
            else None
        ),
    )
    page.on("pageerror", lambda error: errors.append(str(error)))
    # Browsers ask for /favicon.ico on their own; the admin has none, and that is no page's error.
    page.on(
        "response",
        lambda response: (
            errors.append(f"{response.status} {response.url}")
            if response.status >= 400 and not response.url.endswith("/favicon.ico")
            else None
        ),
    )
    page.goto(url)
    return page


def test_swagger_ui_renders_the_api_under_the_policy(live_server: Any, browser: Any) -> None:
    from playwright.sync_api import expect

    errors: list[str] = []
    page = open_page(browser, f"{live_server.url}/api/v1/docs/", errors)
    # Swagger UI drew the schema it fetched (connect-src 'self'): the title and an operation.
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Readiness API")
    expect(page.locator(".opblock-summary-path", has_text="/api/v1/metrics").first).to_be_visible()
    assert page.evaluate("window.__violations") == []
    assert errors == []


@pytest.fixture
def admin_with_password(transactional_db: None, cast: Cast) -> Cast:
    # Before the browser starts: the ORM must not run while Playwright's event loop does.
    cast.admin.set_password("a-long-admin-password")
    cast.admin.save()
    return cast


def test_the_admin_works_under_the_policy(live_server: Any, admin_with_password: Cast, browser: Any) -> None:
    from playwright.sync_api import expect

    cast = admin_with_password
    errors: list[str] = []
    page = open_page(browser, f"{live_server.url}/admin/login/", errors)
    page.fill("#id_username", "admin")
    page.fill("#id_password", "a-long-admin-password")
    page.click("input[type=submit]")
    expect(page.locator("#site-name")).to_contain_text("Readiness")
    # A change form runs the admin's own scripts (inlines, autocomplete, date widgets).
    page.goto(f"{live_server.url}/admin/projects/project/{cast.project.pk}/change/")
    expect(page.locator("#project_form")).to_be_visible()
    expect(page.locator(".add-row a").first).to_be_attached()
    assert page.evaluate("window.__violations") == []
    assert errors == []
