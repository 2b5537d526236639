"""Production settings: ``check --deploy`` is clean with production values, HTTPS behaves behind a
proxy, the secret key is refused when unsafe, and a bad value stops the start naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from readiness.settings import INSECURE_LOCAL_SECRET
from tests.ops.conftest import PRODUCTION_ENV, STRONG_KEY, manage, run_python


def test_check_deploy_reports_nothing_with_production_values() -> None:
    result = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout
    assert "WARNING" not in result.stderr


def test_check_deploy_is_clean_with_the_secret_key_from_a_file(tmp_path: Path) -> None:
    key_file = tmp_path / "django_secret_key"
    key_file.write_text(STRONG_KEY + "\n")
    env: dict[str, str | None] = {**PRODUCTION_ENV, "DJANGO_SECRET_KEY": None}
    result = manage(
        "check", "--deploy", "--fail-level", "WARNING", DJANGO_SECRET_KEY_FILE=str(key_file), **env
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "key",
    [None, INSECURE_LOCAL_SECRET, "short-key", "a" * 60],
    ids=["missing", "the-public-default", "too-short", "one-character"],
)
def test_production_refuses_to_start_with_an_unsafe_secret_key(key: str | None) -> None:
    result = manage("check", **{**PRODUCTION_ENV, "DJANGO_SECRET_KEY": key})
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_a_plain_http_run_with_debug_off_works_with_a_key_of_its_own() -> None:
    # PRODUCT.md §7: DJANGO_HTTPS is false by default so a local DJANGO_DEBUG=false run just works.
    result = manage("check", DJANGO_DEBUG="false", DJANGO_SECRET_KEY=STRONG_KEY)
    assert result.returncode == 0, result.stderr


def test_a_plain_http_run_with_debug_off_refuses_to_start_without_a_key() -> None:
    # Before, plain HTTP silently signed sessions with the public key from the source.
    result = manage("check", DJANGO_DEBUG="false", DJANGO_HTTPS="false", DJANGO_SECRET_KEY=None)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY: required when DJANGO_DEBUG is false" in result.stderr


HTTPS_PROBE = """
from django.test import Client
client = Client(HTTP_HOST="readiness.example.com")
plain = client.get("/login/")
print("plain", plain.status_code, plain.get("Location"))
proxied = client.get("/login/", HTTP_X_FORWARDED_PROTO="https")
print("proxied", proxied.status_code)
print("hsts", proxied.get("Strict-Transport-Security"))
cookie = proxied.cookies["csrftoken"]
print("csrf-secure", bool(cookie["secure"]))
health = client.get("/healthz")
print("healthz", health.status_code)
"""


def test_https_redirects_plain_http_and_trusts_the_proxy_s_forwarded_proto() -> None:
    result = run_python(HTTPS_PROBE, **PRODUCTION_ENV)
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(" ", 1) for line in result.stdout.strip().splitlines())
    assert lines["plain"] == "301 https://readiness.example.com/login/"
    assert lines["proxied"] == "200"
    assert lines["hsts"] == "max-age=31536000; includeSubDomains; preload"
    assert lines["csrf-secure"] == "True"
    # An orchestrator probing over plain HTTP inside the cluster is answered, not redirected.
    assert lines["healthz"] == "200"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("READINESS_API_RATE_LIMIT", "lots"),
        ("READINESS_API_RATE_LIMIT", "0/m"),
        ("READINESS_METRICS_TOKEN", "short"),
        ("READINESS_RATE_LIMIT_REDIS_URL", "amqp://rabbitmq:5672//"),
        ("READINESS_LOGIN_FAILURE_LIMIT", "0"),
        ("READINESS_LOGIN_ADDRESS_FAILURE_LIMIT", "many"),
        ("READINESS_LOGIN_LOCKOUT_MINUTES", "soon"),
        ("READINESS_PROXY_COUNT", "-1"),
        ("DJANGO_HTTPS", "yes please"),
        ("DJANGO_HSTS_SECONDS", "a year"),
        ("LOG_FORMAT", "xml"),
        ("LOG_LEVEL", "LOUD"),
    ],
)
def test_a_bad_value_stops_the_start_and_names_the_variable(variable: str, value: str) -> None:
    result = manage("check", **{variable: value})
    assert result.returncode != 0
    assert variable in result.stderr


def test_an_unreadable_metrics_token_file_stops_the_start_and_names_the_variable(tmp_path: Path) -> None:
    result = manage("check", READINESS_METRICS_TOKEN_FILE=str(tmp_path / "no-such-file"))
    assert result.returncode != 0
    assert "READINESS_METRICS_TOKEN_FILE" in result.stderr


def test_a_multiprocess_metrics_folder_that_does_not_exist_stops_the_start(tmp_path: Path) -> None:
    result = manage("check", PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "missing"))
    assert result.returncode != 0
    assert "PROMETHEUS_MULTIPROC_DIR" in result.stderr


MANIFEST_PROBE = """
import re
from django.test import Client
client = Client()
page = client.get("/login/").content.decode()
css = re.search(r'href="(/static/dashboard/dashboard\\.[0-9a-f]{12}\\.css)"', page).group(1)
asset = client.get(css, HTTP_ACCEPT_ENCODING="gzip")
print(css, asset.status_code, asset.get("Content-Encoding"), asset.get("Cache-Control"))
"""


def test_the_image_s_static_files_collect_and_serve_under_hashed_compressed_names(tmp_path: Path) -> None:
    # What the Dockerfile runs at build: a static file that breaks the manifest (a missing source map,
    # a CSS url() to nothing) must fail here, not in a production build.
    env = {"READINESS_VAR_DIR": str(tmp_path), "DJANGO_STATIC_MANIFEST": "true"}
    collected = manage("collectstatic", "--no-input", "-v0", **env)
    assert collected.returncode == 0, collected.stderr
    result = run_python(MANIFEST_PROBE, **env)
    assert result.returncode == 0, result.stderr
    _, status, encoding, cache = result.stdout.strip().split(maxsplit=3)
    assert status == "200" and encoding == "gzip"
    # Hashed names never change content, so browsers may keep them for good.
    assert "immutable" in cache or "max-age=315360000" in cache
