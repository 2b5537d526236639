"""The observability of a real stack: gunicorn with two processes and a Celery worker sharing one
PROMETHEUS_MULTIPROC_DIR, as docker-compose.yml runs them. A scrape of either web process sums every
process's counters (the worker's ingestion counts included), and the worker's JSON log lines carry
the task and the id of the request that queued it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from django.conf import settings

from readiness.projects.services import token_create
from readiness.telemetry.models import MetricPoint
from readiness.telemetry.services import DIRECT_MAX_POINTS
from tests.factories import ProjectFactory
from tests.ops.conftest import ROOT, clean_environment, free_port, sample, wait_for
from tests.servers import RedisServer, database_url

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]
METRICS_TOKEN = "stack-scrape-token-0123456789abcdef"
# Pushes large enough to go through the outbox: the worker applies them, so its counters are summed.
PUSHES, POINTS_EACH = 5, DIRECT_MAX_POINTS + 1


@pytest.fixture
def stack_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment of web and worker: this test's database, a broker of their own (Redis when the
    suite runs on Redis, else a private file-system broker), one metrics folder."""
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    env = clean_environment(
        DATABASE_URL=database_url(),
        READINESS_VAR_DIR=str(tmp_path / "var"),
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
        READINESS_METRICS_TOKEN=METRICS_TOKEN,
        LOG_FORMAT="json",
        LOG_LEVEL="INFO",
    )
    env.pop("CELERY_BROKER_URL", None)
    redis_server = None
    if settings.CELERY_BROKER_URL.startswith("redis"):
        redis_server = RedisServer(free_port())
        redis_server.start()
        env["CELERY_BROKER_URL"] = redis_server.url
    try:
        yield env
    finally:
        if redis_server is not None:
            redis_server.stop()


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def web_and_worker(stack_env: dict[str, str], tmp_path: Path) -> Iterator[tuple[str, Path]]:
    port = free_port()
    worker_log = tmp_path / "worker.log"
    web = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "readiness.wsgi:application",
            f"--bind=127.0.0.1:{port}",
            "--workers=2",
            "--worker-class=gthread",
            "--threads=2",
        ],
        cwd=ROOT,
        env=stack_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    with worker_log.open("wb") as log_file:
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "readiness",
                "worker",
                "--pool=prefork",
                "--concurrency=1",
                "--loglevel=INFO",
                "--without-gossip",
                "--without-mingle",
            ],
            cwd=ROOT,
            env=stack_env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"

    def web_ready() -> bool:
        try:
            return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        assert wait_for(web_ready, timeout=60), "gunicorn did not start"
        yield base, worker_log
    finally:
        stop(web)
        stop(worker)


def test_a_scrape_of_any_web_process_sums_web_and_worker_counters(
    web_and_worker: tuple[str, Path],
) -> None:
    base, worker_log = web_and_worker
    project = ProjectFactory()
    secret = token_create(project=project, name="stack", scopes=["metrics:write"])[1]
    with httpx.Client(base_url=base, timeout=30) as client:
        for n in range(PUSHES):
            response = client.post(
                "/api/v1/metrics",
                json={"points": [{"metric": "latency_ms", "value": float(i)} for i in range(POINTS_EACH)]},
                headers={"Authorization": f"Bearer {secret}", "X-Request-ID": f"stack-push-{n}"},
            )
            assert response.status_code == 202, response.text
            assert response.headers["X-Request-ID"] == f"stack-push-{n}"
        stored = wait_for(
            lambda: MetricPoint.objects.filter(project=project).count() == PUSHES * POINTS_EACH, timeout=90
        )
        assert stored, "the worker did not apply the pushes"

        def scrape() -> str:
            response = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
            assert response.status_code == 200
            return response.text

        # The worker adds its counts right after its commit; give it a moment to write them.
        def counted() -> bool:
            return sample(scrape(), "readiness_ingest_points_processed_total") == PUSHES * POINTS_EACH

        assert wait_for(counted, timeout=30), scrape()
        # New connections: gunicorn hands them to either process; each answer holds every process's sum.
        for _ in range(6):
            with httpx.Client(base_url=base, timeout=30) as fresh:
                exposition = fresh.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).text
            assert sample(exposition, "readiness_ingest_points_processed_total") == PUSHES * POINTS_EACH
            assert sample(exposition, "readiness_ingest_batches_processed_total") == PUSHES
            accepted = {"view": "metrics-push", "method": "POST", "status": "202"}
            assert sample(exposition, "readiness_http_requests_total", **accepted) == PUSHES
            assert sample(exposition, "readiness_ingest_backlog_batches") == 0

    # The worker logs JSON lines; those of a task carry its id and the id of the push that queued it.
    task_lines = []
    for raw in worker_log.read_text().splitlines():
        try:
            line = json.loads(raw)
        except ValueError:
            continue  # Celery's start-up banner is plain text on stdout
        if isinstance(line, dict) and line.get("task") == "telemetry.batches_drain":
            task_lines.append(line)
    assert task_lines, worker_log.read_text()[-3000:]
    assert all(line["task_id"] for line in task_lines)
    assert any(str(line.get("request_id", "")).startswith("stack-push-") for line in task_lines), task_lines
    assert all(str(line["ts"]).endswith("Z") for line in task_lines)
