"""Real servers for the pull-source tests, each on a free port and private to its test:

- ``PrometheusServer``: Debian's ``prometheus`` scraping the given targets every second, in a temporary
  folder; it can be stopped, paused (SIGSTOP) and started again on the same data and port;
- ``Exporter``: a ``prometheus_client`` HTTP server in this process with a request-duration Histogram
  and a requests Counter by ``code``, which the test drives with known observations;
- ``MlflowServer``: ``mlflow server`` (SQLite store, local artifacts) from the virtual environment that
  ``make mlflow-env`` makes in var/mlflow-venv (tests/mlflow pins it), with ``MlflowRegistry``, the REST
  calls a test makes to log runs and move aliases.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

from tests.servers import ROOT, free_port, wait_for

MLFLOW_VENV = ROOT / "var" / "mlflow-venv"
MLFLOW_ENV_COMMAND = "make mlflow-env"
# Buckets around the durations the tests observe, so histogram_quantile interpolates in a known bucket.
DURATION_BUCKETS = (0.1, 0.25, 0.5, 1.0)


def _log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _exited(process: subprocess.Popen[bytes]) -> bool:
    """Whether the process has exited, without reaping it: while it is an unreaped zombie its id, which
    is also its group's, cannot be given to another process, so signalling the group stays safe."""
    return os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def _stop_group(process: subprocess.Popen[bytes], timeout: float = 20) -> None:
    """End a server started in its own session, children included (mlflow's uvicorn worker): SIGTERM
    to the group, SIGKILL to what is left of it, and only then reap the leader."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not _exited(process):
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


class PrometheusServer:
    """Debian's Prometheus on a free port, scraping ``targets`` (``host:port``) as job ``job`` every
    second, its TSDB in a temporary folder that survives ``stop`` and ``start``."""

    def __init__(self, targets: Sequence[str], *, job: str = "fraud", web_config: dict | None = None) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            message = "Debian's prometheus is not installed (apt-get install prometheus; .ci/run does it)"
            if os.environ.get("CI"):
                pytest.fail(message)
            pytest.skip(message)
        self.binary = binary
        self.port = free_port()
        self.job = job
        self.folder = Path(tempfile.mkdtemp(prefix="readiness-prometheus-"))
        self.data = self.folder / "data"
        self.log = self.folder / "prometheus.log"
        self.config = self.folder / "prometheus.yml"
        scrape = {
            "job_name": job,
            "scrape_interval": "1s",
            "scrape_timeout": "1s",
            "static_configs": [{"targets": list(targets)}],
        }
        # JSON is YAML: no YAML writer needed.
        self.config.write_text(json.dumps({"global": {"scrape_interval": "1s"}, "scrape_configs": [scrape]}))
        self.web_config: Path | None = None
        if web_config is not None:
            self.web_config = self.folder / "web.yml"
            self.web_config.write_text(json.dumps(web_config))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        command = [
            self.binary,
            f"--config.file={self.config}",
            f"--storage.tsdb.path={self.data}",
            f"--web.listen-address=127.0.0.1:{self.port}",
        ]
        if self.web_config is not None:
            command.append(f"--web.config.file={self.web_config}")
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(
                command, stdout=output, stderr=output, cwd=self.folder, start_new_session=True
            )
        try:
            if not wait_for(self._ready, timeout=60):
                raise RuntimeError(f"prometheus did not become ready:\n{_log_tail(self.log)}")
        except RuntimeError:
            self.stop()
            raise

    def _ready(self) -> bool:
        if self.process is not None and _exited(self.process):
            raise RuntimeError(f"prometheus exited:\n{_log_tail(self.log)}")
        try:
            # With a web config the ready endpoint answers 401: being asked for credentials is ready.
            return httpx.get(f"{self.url}/-/ready", timeout=2).status_code in (200, 401)
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            self.resume()
            _stop_group(self.process)
            self.process = None

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): the kernel still accepts connections, nobody answers them."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.process is not None:
            os.kill(self.process.pid, signal.SIGCONT)

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    def api(self, endpoint: str, **params: str) -> dict:
        """Prometheus' own answer on its HTTP API: the reference the client's answers are compared with."""
        return httpx.get(f"{self.url}/api/v1/{endpoint}", params=params, timeout=10).json()

    def instant(self, query: str, at: float | None = None) -> dict:
        """``query`` evaluated at unix time ``at`` (now without it), by ``/api/v1/query``."""
        return (
            self.api("query", query=query) if at is None else self.api("query", query=query, time=f"{at:.3f}")
        )

    def scrapes(self) -> int:
        """How many scrapes of the job in the last 5 minutes are in the TSDB."""
        result = self.instant(f'count_over_time(up{{job="{self.job}"}}[5m])')["data"]["result"]
        return int(float(result[0]["value"][1])) if result else 0

    def wait_for_scrapes(self, more: int) -> None:
        """Wait until ``more`` scrapes have landed after this call (so what the exporter holds now is in)."""
        target = self.scrapes() + more
        assert wait_for(lambda: self.scrapes() >= target, timeout=60, interval=0.5), "no scrapes landed"


class Exporter:
    """A /metrics endpoint in this process, with the two series a model service usually exposes:
    ``http_request_duration_seconds`` (Histogram) and ``http_requests_total`` by ``code`` (Counter)."""

    def __init__(self, codes: Sequence[str] = ("200", "500")) -> None:
        self.registry = CollectorRegistry()
        self.duration = Histogram(
            "http_request_duration_seconds",
            "Time to answer a prediction request",
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.requests = Counter(
            "http_requests_total", "Prediction requests", ["code"], registry=self.registry
        )
        # Every code's series exists from the first scrape at 0, so rates start from a known zero.
        for code in codes:
            self.requests.labels(code=code)
        self.port = free_port()
        self.server, self.thread = start_http_server(self.port, addr="127.0.0.1", registry=self.registry)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.target}"

    def serve(self, *, duration: float, code: str, count: int) -> None:
        """``count`` requests that took ``duration`` seconds and answered ``code``."""
        for _ in range(count):
            self.duration.observe(duration)
            self.requests.labels(code=code).inc()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def mlflow_binary() -> Path:
    """The ``mlflow`` of var/mlflow-venv; missing, the test fails under CI and is skipped elsewhere."""
    binary = MLFLOW_VENV / "bin" / "mlflow"
    if not binary.exists():
        message = (
            f"the MLflow server's environment is missing: run `{MLFLOW_ENV_COMMAND}` (creates {MLFLOW_VENV})"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return binary


class MlflowServer:
    """``mlflow server`` on a free port with a SQLite backend store and local artifacts in a temporary
    folder, one uvicorn worker. It takes 20 s to 2 minutes to start on a busy 2-core machine (importing
    mlflow is most of it), so tests share one per session."""

    def __init__(self) -> None:
        self.binary = mlflow_binary()
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="readiness-mlflow-"))
        self.log = self.folder / "mlflow.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {
            **os.environ,
            # The server's job runner (GenAI evaluation jobs) is a second process importing all of mlflow:
            # nothing these tests use, and it would double the start-up time.
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        }
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(
                [
                    str(self.binary),
                    "server",
                    "--backend-store-uri",
                    f"sqlite:///{self.folder / 'mlflow.db'}",
                    "--default-artifact-root",
                    str(self.folder / "artifacts"),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--workers",
                    "1",
                ],
                stdout=output,
                stderr=output,
                cwd=self.folder,
                env=env,
                start_new_session=True,
            )
        try:
            if not wait_for(self._ready, timeout=300, interval=0.5):
                raise RuntimeError(f"mlflow server did not become ready:\n{_log_tail(self.log)}")
        except RuntimeError:
            self.stop()
            raise

    def _ready(self) -> bool:
        if self.process is not None and _exited(self.process):
            raise RuntimeError(f"mlflow server exited:\n{_log_tail(self.log)}")
        try:
            return httpx.get(f"{self.url}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            _stop_group(self.process)
            self.process = None

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


class MlflowRegistry:
    """What a training pipeline does to MLflow, through its REST API 2.0: runs, metrics, model versions
    and aliases."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=f"{url}/api/2.0/mlflow", timeout=30)

    def _post(self, endpoint: str, body: dict) -> dict:
        response = self.http.post(endpoint, json=body)
        assert response.status_code == 200, f"{endpoint}: {response.status_code} {response.text}"
        return response.json()

    def create_registered_model(self, name: str | None = None) -> str:
        name = name or f"model-{uuid.uuid4().hex[:8]}"
        self._post("registered-models/create", {"name": name})
        return name

    def create_run(self, experiment_id: str = "0") -> str:
        run = self._post(
            "runs/create", {"experiment_id": experiment_id, "start_time": int(time.time() * 1000)}
        )
        return run["run"]["info"]["run_id"]

    def log_metric(self, run_id: str, key: str, value: float | str, *, timestamp_ms: int, step: int) -> None:
        """``value`` "NaN" logs a NaN, as MLflow's own client sends one."""
        self._post(
            "runs/log-metric",
            {"run_id": run_id, "key": key, "value": value, "timestamp": timestamp_ms, "step": step},
        )

    def create_model_version(self, name: str, run_id: str) -> str:
        body = {"name": name, "source": f"runs:/{run_id}/model", "run_id": run_id}
        return self._post("model-versions/create", body)["model_version"]["version"]

    def set_alias(self, name: str, alias: str, version: str) -> None:
        self._post("registered-models/alias", {"name": name, "alias": alias, "version": version})

    def close(self) -> None:
        self.http.close()
