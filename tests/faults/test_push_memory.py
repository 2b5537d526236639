"""A push of at most 5 MiB costs a gunicorn worker at most 50 MB of memory, whatever its body holds
(issue 10, item 3), and is still answered in the API's error shape. Measured on the real server: the
worker's resident memory, as tests/faults/hostile_pushes.py explains; each body's figures are printed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from readiness.projects.services import token_create
from tests.factories import ProjectFactory
from tests.faults.conftest import UNLIMITED, Broker
from tests.faults.hostile_pushes import FIVE_MIB, MEMORY_BOUND_MB, MeasuredWorker, hostile_bodies
from tests.servers import WebServer, database_url, subprocess_env

pytestmark = pytest.mark.django_db(transaction=True)
BODIES = hostile_bodies(dt.datetime.now(dt.UTC))


@pytest.fixture
def measured(broker: Broker, tmp_path: Path) -> Iterator[MeasuredWorker]:
    env = subprocess_env(broker_url=broker.url, db_url=database_url(), **UNLIMITED)
    server = WebServer(env, workers=1, log=tmp_path / "gunicorn.log")
    server.start()
    _, secret = token_create(project=ProjectFactory(), name="hostile", scopes=["metrics:write"])
    yield MeasuredWorker(server, secret)
    server.stop()


@pytest.mark.parametrize("name", list(BODIES))
def test_a_push_of_at_most_5_mib_costs_a_worker_at_most_50_mb(
    measured: MeasuredWorker, report: Callable[[str], None], name: str
) -> None:
    body = BODIES[name]
    assert len(body) <= FIVE_MIB
    cost = measured.cost(body)
    report(
        f"push memory: {name} ({len(body) / 1e6:.2f} MB): HTTP {cost.status}, "
        f"worker peak +{cost.peak_mb:.1f} MB, {cost.seconds * 1000:.0f} ms"
    )
    if name.startswith("valid"):
        assert cost.status == 202, cost.answer
    else:
        assert cost.status == 400, cost.answer
        error = cost.answer["error"]
        assert isinstance(error, dict) and error["code"] == "invalid" and error["message"]
        assert isinstance(error["details"], list) and len(error["details"]) <= 100
        assert all(set(detail) == {"index", "field", "message"} for detail in error["details"])
    assert cost.peak_mb <= MEMORY_BOUND_MB
