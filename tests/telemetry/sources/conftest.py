"""Fixtures of the pull-source tests: a real Prometheus scraping a real exporter (one per module, the
exporter's traffic is the module's to drive) and a real MLflow server (one per session: it is slow to
start)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.pull_servers import Exporter, MlflowRegistry, MlflowServer, PrometheusServer


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    # As the pull job will: PRODUCT.md §8's 10 s timeout, no redirects.
    with httpx.Client(timeout=10, follow_redirects=False) as client:
        yield client


@pytest.fixture(scope="module")
def exporter() -> Iterator[Exporter]:
    exporter = Exporter()
    yield exporter
    exporter.close()


@pytest.fixture(scope="module")
def prometheus(exporter: Exporter) -> Iterator[PrometheusServer]:
    server = PrometheusServer([exporter.target])
    server.start()
    yield server
    server.destroy()


@pytest.fixture(scope="session")
def mlflow_server() -> Iterator[MlflowServer]:
    server = MlflowServer()
    server.start()
    yield server
    server.destroy()


@pytest.fixture
def mlflow_registry(mlflow_server: MlflowServer) -> Iterator[MlflowRegistry]:
    registry = MlflowRegistry(mlflow_server.url)
    yield registry
    registry.close()
