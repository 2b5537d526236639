"""Settings fail loudly at start on a malformed environment variable, naming it, and refuse to start
without a secret key of their own unless DJANGO_DEBUG is on."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.ops.conftest import SERVERS, manage, run_python

PRINT_KEY = "from django.conf import settings; print(settings.SECRET_KEY)"


def start_with(**env: str | None) -> subprocess.CompletedProcess[str]:
    """``manage.py check`` on the embedded default (not this run's servers), with ``env``."""
    return manage("check", without=SERVERS, **env)


def python_with(code: str, **env: str | None) -> subprocess.CompletedProcess[str]:
    return run_python(code, without=SERVERS, **env)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DJANGO_DEBUG", "ture"),
        ("EMAIL_PORT", "twenty-five"),
        ("CELERY_BROKER_URL", "kafka://localhost"),
        ("DATABASE_URL", "nosuchdb://x"),
        ("READINESS_PROBE_DENY_NETWORKS", "10.0.0.0/8,10.0.0.0/33"),
    ],
)
def test_malformed_variable_stops_start_and_names_it(variable: str, value: str) -> None:
    result = start_with(**{variable: value})
    assert result.returncode != 0
    assert variable in result.stderr


# --- the secret key ----------------------------------------------------------------------------


def test_without_a_secret_key_debug_off_refuses_to_start_and_says_how_to_make_one() -> None:
    # DJANGO_DEBUG unset is false: before, this started with the public key from the source.
    result = python_with(PRINT_KEY, DJANGO_SECRET_KEY=None)
    assert result.returncode != 0
    assert result.stdout == ""
    message = result.stderr.strip().splitlines()[-1]
    assert "DJANGO_SECRET_KEY: required when DJANGO_DEBUG is false" in message
    assert "DJANGO_SECRET_KEY_FILE" in message and "secrets.token_urlsafe(50)" in message


@pytest.mark.parametrize(
    ("key", "why"),
    [("", "required"), ("readiness-insecure-local-key-set-DJANGO_SECRET_KEY-in-production", "required"),
     ("short-key", "too weak"), ("a" * 60, "too weak")],
    ids=["empty", "the-public-default", "too-short", "one-character"],
)  # fmt: skip
def test_manage_py_refuses_an_unsafe_key_on_plain_http_too(key: str, why: str) -> None:
    result = start_with(DJANGO_SECRET_KEY=key, DJANGO_DEBUG="false", DJANGO_HTTPS="false")
    assert result.returncode != 0
    assert f"DJANGO_SECRET_KEY: {why}" in result.stderr


def test_secret_key_can_come_from_a_file(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("a-secret-from-a-file-" + "x" * 40 + "\n")
    result = python_with(PRINT_KEY, DJANGO_SECRET_KEY=None, DJANGO_SECRET_KEY_FILE=str(key_file))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "a-secret-from-a-file-" + "x" * 40


def test_debug_on_starts_without_a_key_on_the_local_one() -> None:
    result = python_with(PRINT_KEY, DJANGO_SECRET_KEY=None, DJANGO_DEBUG="true")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "readiness-insecure-local-key-set-DJANGO_SECRET_KEY-in-production"


def test_a_key_is_all_the_embedded_default_needs() -> None:
    result = start_with()
    assert result.returncode == 0, result.stderr


def test_a_sqlite_url_shares_its_file_between_processes_like_the_embedded_default(tmp_path: Path) -> None:
    # Without these options a worker's apply transaction fails with "database is locked" as soon as a
    # web process writes a push in between (found by tests/faults on the embedded default).
    code = "from django.conf import settings; print(settings.DATABASES['default']['OPTIONS'])"
    result = python_with(code, DATABASE_URL=f"sqlite:///{tmp_path}/x.db")
    assert result.returncode == 0, result.stderr
    options = result.stdout.strip().splitlines()[-1]
    assert "'transaction_mode': 'IMMEDIATE'" in options and "'timeout': 20" in options


def test_prepared_statements_can_be_turned_off_or_retuned_from_the_url_and_nothing_else() -> None:
    # Off for a transaction-pooling PgBouncer older than 1.21; text psycopg would take and fail on later.
    code = "from django.conf import settings; "
    code += "print(settings.DATABASES['default']['OPTIONS']['prepare_threshold'])"
    base = "postgres://readiness@127.0.0.1:5432/readiness"
    for query, expected in (("", "5"), ("?prepare_threshold=off", "None"), ("?prepare_threshold=20", "20")):
        result = python_with(code, DATABASE_URL=base + query)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == expected, query
    refused = python_with(code, DATABASE_URL=base + "?prepare_threshold=never")
    assert refused.returncode != 0
    assert "DATABASE_URL: prepare_threshold is a number or off, not 'never'" in refused.stderr
