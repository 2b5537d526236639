"""gunicorn.conf.py: the one place the web server's settings live, read by the image's CMD, compose's
web service, the benchmarks and the test servers."""

from __future__ import annotations

from pathlib import Path

import pytest

from readiness.env import ImproperlyConfiguredEnv
from tests.ops.conftest import run_python
from tests.servers import gunicorn_arguments, gunicorn_settings

ROOT = Path(__file__).resolve().parents[2]


def test_the_measured_defaults_serve_with_gthread() -> None:
    settings = gunicorn_settings({})
    assert settings["worker_class"] == "gthread"
    assert (settings["workers"], settings["threads"]) == (3, 4)
    assert settings["wsgi_app"] == "readiness.wsgi:application"


def test_processes_and_threads_come_from_the_environment() -> None:
    settings = gunicorn_settings({"WEB_WORKERS": "5", "WEB_THREADS": "2"})
    assert (settings["workers"], settings["threads"]) == (5, 2)


@pytest.mark.parametrize("env", [{"WEB_WORKERS": "three"}, {"WEB_THREADS": "0"}])
def test_a_malformed_setting_stops_gunicorn_with_its_name(env: dict[str, str]) -> None:
    with pytest.raises(ImproperlyConfiguredEnv, match=next(iter(env))):
        gunicorn_settings(env)


def test_the_image_runs_gunicorn_with_the_file_beside_the_code() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert any(line.startswith("COPY ") and "gunicorn.conf.py" in line for line in dockerfile.splitlines())
    assert gunicorn_arguments() == []  # everything but the address comes from the file


def test_a_web_process_freezes_what_it_loaded_before_traffic() -> None:
    # Out of the garbage collector's reach, Django's and Readiness's objects no longer make the full
    # collections that requests trigger long (the push p99 of docs/benchmarks.md).
    result = run_python("import gc, readiness.wsgi; print(gc.get_freeze_count())", DJANGO_DEBUG="true")
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.strip().splitlines()[-1]) > 10_000
