"""Settings fail loudly at start on a malformed environment variable, naming it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def start_with(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL", "CELERY_"))}
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DJANGO_DEBUG", "ture"),
        ("EMAIL_PORT", "twenty-five"),
        ("CELERY_BROKER_URL", "kafka://localhost"),
        ("DATABASE_URL", "nosuchdb://x"),
    ],
)
def test_malformed_variable_stops_start_and_names_it(variable: str, value: str) -> None:
    result = start_with(**{variable: value})
    assert result.returncode != 0
    assert variable in result.stderr


def test_secret_key_can_come_from_a_file(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("a-secret-from-a-file-" + "x" * 40 + "\n")
    code = "from django.conf import settings; print(settings.SECRET_KEY)"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    result = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=ROOT,
        env={
            **clean,
            "DJANGO_SETTINGS_MODULE": "readiness.settings",
            "DJANGO_SECRET_KEY_FILE": str(key_file),
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.stdout.strip() == "a-secret-from-a-file-" + "x" * 40


def test_nothing_set_runs_on_the_embedded_default() -> None:
    result = start_with()
    assert result.returncode == 0, result.stderr


def test_a_sqlite_url_shares_its_file_between_processes_like_the_embedded_default(tmp_path: Path) -> None:
    # Without these options a worker's apply transaction fails with "database is locked" as soon as a
    # web process writes a push in between (found by tests/faults on the embedded default).
    code = "from django.conf import settings; print(settings.DATABASES['default']['OPTIONS'])"
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL"))}
    result = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=ROOT,
        env={
            **clean,
            "DJANGO_SETTINGS_MODULE": "readiness.settings",
            "DATABASE_URL": f"sqlite:///{tmp_path}/x.db",
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    options = result.stdout.strip().splitlines()[-1]
    assert "'transaction_mode': 'IMMEDIATE'" in options and "'timeout': 20" in options
