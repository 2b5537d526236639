"""PostgreSQL goes down under a sustained push load, once as a crash and once as a clean restart:
every push is answered 202 or 503 with Retry-After, within a bound, never another 5xx; and every 202
is durable: after recovery its points are stored exactly once.

The cluster is a private one this test creates (initdb in a temporary folder, a free port), so the
test runs the same on PostgreSQL and on the embedded default, and never touches the shared server.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from readiness.telemetry.services import DIRECT_MAX_POINTS
from tests.faults.conftest import UNLIMITED, Broker
from tests.faults.load import REQUEST_TIMEOUT, Figures, PushLoad, run_phase
from tests.servers import (
    ROOT,
    PostgresCluster,
    PostgresUnavailable,
    WebServer,
    Worker,
    subprocess_env,
    wait_for,
)

pytestmark = [pytest.mark.worker]

PROJECT_YAML = """
teams: [{slug: faults, name: Fault suite}]
projects: [{slug: faults, name: Fault suite, team: faults}]
"""
# How long the database stays down in each outage: several rounds of client retries see it.
OUTAGE_SECONDS = 4.0
# A push answered slower than this counts as a hang: a connection to a stopped PostgreSQL is refused
# at once, so even a request caught mid-query by the restart answers in well under a second.
ANSWER_BOUND = 15.0
SWEEP = (
    "import datetime as dt; from readiness.telemetry.services import batches_sweep; "
    "print(batches_sweep(now=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=2)))"
)


def manage(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, f"manage.py {' '.join(args)}: {result.stderr[-2000:]}"
    return result.stdout


@dataclass
class AppOnCluster:
    cluster: PostgresCluster
    env: dict[str, str]
    web: WebServer
    secret: str

    def query(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        # A new connection per question: the cluster restarts under the test's feet.
        with psycopg.connect(self.cluster.url("readiness"), autocommit=True) as conn:
            return conn.execute(sql, params).fetchall()

    def pending(self) -> int:
        return self.query("SELECT count(*) FROM telemetry_ingestbatch WHERE state = 'pending'")[0][0]

    def ledger(self, load: PushLoad) -> Figures:
        (project_id,) = self.query("SELECT id FROM projects_project WHERE slug = 'faults'")[0]
        where = "FROM telemetry_metricpoint WHERE project_id = %s"
        ((count, total),) = self.query(f"SELECT count(*), coalesce(sum(value), 0) {where}", [project_id])
        values = [value for (value,) in self.query(f"SELECT value {where}", [project_id])]
        return load.ledger(values, db_count=count, db_sum=float(total))


@pytest.fixture
def cluster() -> Iterator[PostgresCluster]:
    try:
        cluster = PostgresCluster()
        cluster.init()
        cluster.start()
        cluster.create_database("readiness")
    except PostgresUnavailable as exc:
        pytest.fail(f"the PostgreSQL restart test needs a private cluster, which could not start: {exc}")
    yield cluster
    cluster.destroy()


@pytest.fixture
def app_on_cluster(cluster: PostgresCluster, broker: Broker, tmp_path: Path) -> Iterator[AppOnCluster]:
    """Web (gunicorn) and a worker on the private cluster, migrated, with a project and its token
    made by the product's own commands."""
    env = subprocess_env(broker_url=broker.url, db_url=cluster.url("readiness"), **UNLIMITED)
    manage(env, "migrate", "--no-input", "-v0")
    manage(env, "readiness_import", "-", stdin=PROJECT_YAML)
    out = manage(env, "readiness_token", "create", "faults", "--scopes", "metrics:write", "--name", "load")
    worker, web = (
        Worker(broker.url, db_url=cluster.url("readiness"), log=tmp_path / "worker.log"),
        WebServer(env, log=tmp_path / "web.log"),
    )
    worker.start()
    web.start()
    yield AppOnCluster(cluster=cluster, env=env, web=web, secret=out.splitlines()[-1])
    web.stop()
    worker.stop()


# Batches of 500 points go through the outbox (a pending batch, applied by the worker); of 50 they are
# written by the request itself, with their batch record, in one transaction.
@pytest.mark.parametrize("size", [500, 50], ids=["outbox", "written-by-the-request"])
def test_a_postgresql_restart_under_load_answers_202_or_503_and_keeps_every_202(
    app_on_cluster: AppOnCluster, report: Callable[[str], None], size: int
) -> None:
    assert (size > DIRECT_MAX_POINTS) == (size == 500)
    app, cluster = app_on_cluster, app_on_cluster.cluster
    load = PushLoad(port=app.web.port, secret=app.secret, clients=4, size=size)
    load.start()
    try:
        run_phase(load, seconds=3.0)
        for mode in ("immediate", "fast"):  # a crash (WAL replay at the next start), then a clean stop
            refused, stopped = load.status_count("503"), time.monotonic()
            cluster.stop(mode)
            assert wait_for(
                lambda n=refused, t=stopped: (
                    load.status_count("503") > n and time.monotonic() - t > OUTAGE_SECONDS
                ),
                timeout=60,
            ), "no push was refused while PostgreSQL was down"
            cluster.start()
            run_phase(load, seconds=3.0)  # and pushes are acknowledged again
    finally:
        load.stop()
    swept = int(manage(app.env, "shell", "-v0", "-c", SWEEP))  # beat's sweeper, a minute on
    assert wait_for(lambda: app.pending() == 0, timeout=120), f"{app.pending()} batches never applied"
    figures = app.ledger(load)
    figures.extra = {"PostgreSQL stops": "2 (a crash, then a clean stop)", "overdue batches swept": swept}
    report(figures.line(f"PostgreSQL restart, {size}-point batches"))
    load.assert_exactly_once(figures)
    assert set(figures.status_counts) <= {"202", "503"}, figures.status_counts
    assert figures.status_counts["503"] >= 2
    assert figures.max_latency < min(ANSWER_BOUND, REQUEST_TIMEOUT)
