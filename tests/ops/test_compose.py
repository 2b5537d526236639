"""docker-compose.yml, the Dockerfile and .env.example, checked without a Docker engine: Debian's
``docker-compose`` parses and validates the file (``config``), and the rest is read as text.

Without docker-compose the compose tests skip on a workstation and fail in CI (``CI`` set), as the
browser tests do: .ci/run installs it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.ops.conftest import ROOT, STRONG_KEY
from tests.servers import compose_worker_services

COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"


@pytest.fixture
def docker_compose() -> str:
    found = shutil.which("docker-compose")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("docker-compose is missing (apt-get install docker-compose)")
        pytest.skip("docker-compose is missing (apt-get install docker-compose)")
    return found


def filled_env_file(tmp_path: Path) -> Path:
    """.env.example with its two required values filled in, as the README tells a deployer to do."""
    text = ENV_EXAMPLE.read_text()
    text = re.sub(r"(?m)^DJANGO_SECRET_KEY=$", f"DJANGO_SECRET_KEY={STRONG_KEY}", text)
    text = re.sub(r"(?m)^POSTGRES_PASSWORD=$", "POSTGRES_PASSWORD=a-database-password", text)
    env_file = tmp_path / ".env"
    env_file.write_text(text)
    return env_file


def compose(docker_compose: str, env_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # Only the env file speaks: nothing of this test run's environment may fill in a variable.
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root")}
    return subprocess.run(
        [
            docker_compose,
            "--project-directory",
            str(ROOT),
            "-f",
            str(COMPOSE),
            "--env-file",
            str(env_file),
            *args,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def rendered(docker_compose: str, tmp_path: Path) -> dict[str, Any]:
    result = compose(docker_compose, filled_env_file(tmp_path), "config")
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_compose_file_passes_docker_compose_config(docker_compose: str, tmp_path: Path) -> None:
    result = compose(docker_compose, filled_env_file(tmp_path), "config", "-q")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""


def test_compose_refuses_to_render_without_the_secret_key(docker_compose: str, tmp_path: Path) -> None:
    unfilled = tmp_path / ".env"
    unfilled.write_text(ENV_EXAMPLE.read_text())
    result = compose(docker_compose, unfilled, "config", "-q")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr or "POSTGRES_PASSWORD" in result.stderr


def test_compose_runs_the_whole_stack_with_migrate_first(rendered: dict[str, Any]) -> None:
    services = rendered["services"]
    workers = compose_worker_services()
    assert {"postgres", "redis", "migrate", "web", *workers, "beat", "proxy"} <= set(services)
    for name in ("web", *workers, "beat"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["postgres"]["condition"] == "service_healthy", name
        assert depends["redis"]["condition"] == "service_healthy", name
    assert services["migrate"]["command"] == ["python", "manage.py", "migrate", "--no-input"]
    assert services["migrate"]["restart"] == "no"


def test_postgres_keeps_its_data_in_a_named_volume_and_has_a_healthcheck(rendered: dict[str, Any]) -> None:
    postgres = rendered["services"]["postgres"]
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    volume = postgres["volumes"][0]
    source = volume["source"] if isinstance(volume, dict) else volume.split(":")[0]
    assert source == "pgdata" and "pgdata" in rendered["volumes"]


def test_web_runs_gunicorn_with_workers_from_the_environment(docker_compose: str, tmp_path: Path) -> None:
    env_file = filled_env_file(tmp_path)
    env_file.write_text(env_file.read_text() + "WEB_WORKERS=7\nWORKER_EVALUATE_CONCURRENCY=5\n")
    result = compose(docker_compose, env_file, "config")
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    # The image's CMD (gunicorn with gunicorn.conf.py), which reads WEB_WORKERS and WEB_THREADS.
    assert "command" not in services["web"]
    assert services["web"]["environment"]["WEB_WORKERS"] == "7"
    assert services["web"]["environment"]["WEB_THREADS"] == ""  # unset: gunicorn.conf.py's default
    assert "--concurrency=5" in services["worker-evaluate"]["command"]


def test_exactly_one_beat_with_the_database_scheduler(rendered: dict[str, Any]) -> None:
    beat = rendered["services"]["beat"]
    assert "beat" in beat["command"]
    # django-celery-beat's database scheduler, seeded from the code without overwriting admins' edits.
    assert "--scheduler=readiness.beat:CodeDefaultsScheduler" in beat["command"]
    # A fixed container name: `--scale beat=2` cannot start a second one.
    assert beat["container_name"] == "readiness-beat"


def test_app_services_run_with_production_settings(rendered: dict[str, Any]) -> None:
    env = rendered["services"]["web"]["environment"]
    # DEBUG off: the settings refuse to start without a strong key, which compose requires of .env.
    assert env["DJANGO_DEBUG"] == "false"
    assert env["DJANGO_SECRET_KEY"] == STRONG_KEY
    assert env["DATABASE_URL"] == "postgres://readiness:a-database-password@postgres:5432/readiness"
    assert env["CELERY_BROKER_URL"].startswith("redis://redis:6379/")
    # web, workers and beat count metrics into one shared folder, which the metrics volume holds.
    for name in ("web", *compose_worker_services(), "beat"):
        service = rendered["services"][name]
        assert service["environment"]["PROMETHEUS_MULTIPROC_DIR"] == "/app/var/metrics"
        targets = [v["target"] if isinstance(v, dict) else v.split(":")[1] for v in service["volumes"]]
        assert "/app/var/metrics" in targets, name


def test_env_example_documents_every_variable_the_settings_read() -> None:
    read = set()
    for path in (ROOT / "readiness").rglob("*.py"):
        text = path.read_text()
        read |= set(re.findall(r"env_(?:str|bool|int|list)\(\s*\"([A-Z][A-Z0-9_]+)\"", text))
        read |= set(re.findall(r"os\.environ(?:\.get\(|\[)\s*\"([A-Z][A-Z0-9_]+)\"", text))
    read -= {"DJANGO_SETTINGS_MODULE"}  # set by manage.py and wsgi.py, not by a deployer
    read |= set(re.findall(r"\$\{([A-Z][A-Z0-9_]+)", COMPOSE.read_text()))
    documented = set(re.findall(r"(?m)^#?\s*([A-Z][A-Z0-9_]+)=", ENV_EXAMPLE.read_text()))
    assert read, "found no environment reads: the pattern is broken"
    assert sorted(read - documented) == []


def test_dockerfile_builds_a_slim_non_root_image_with_static_files_and_no_dev_extra() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(r"(?m)^FROM python:3\.\d+-slim\b", text)
    users = re.findall(r"(?m)^USER\s+(\S+)", text)
    assert users and users[-1] not in ("root", "0")
    assert re.search(r"(?m)^RUN\b[^\n]*(\\\n[^\n]*)*collectstatic", text)
    assert "[dev]" not in text and ".[dev" not in text
    # The image installs the runtime dependencies exactly as locked (hashes checked), so a missing or
    # changed one fails the build.
    assert "uv export --frozen --no-dev" in text and "--require-hashes" in text
