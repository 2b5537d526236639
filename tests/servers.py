"""Real servers a test may start, stop, kill and restart without touching anyone else's: a private
redis-server, Celery worker and beat, a gunicorn web server and a private PostgreSQL cluster, each a
subprocess on a free port. Celery and gunicorn run with the arguments the deployment files give them
(Procfile, docker-compose.yml, Dockerfile), read from those files. Shared by the ingestion pipeline
tests, the fault suite and the ingestion benchmark (bench/ingest.py)."""

from __future__ import annotations

import contextlib
import glob
import http.client
import json
import logging
import os
import re
import runpy
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import yaml
from celery.contrib.testing.worker import start_worker
from django.conf import settings
from django.db import connection

from readiness.celery import app

ROOT = Path(__file__).resolve().parents[1]


def wait_for(predicate: Callable[[], bool], timeout: float = 60.0, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


@contextlib.contextmanager
def in_process_worker(queues: list[str] | None = None) -> Iterator[None]:
    """A worker thread in this process on the configured broker; it shares the test database.

    Starting it changes process-wide state that outlives it: Celery's worker logging takes the root
    logger (its level becomes ERROR, which silences the warnings later tests read) and -Q selects the
    app's queues for good (a later worker would consume only those). Both are put back on the way out.
    """
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    consumed = list(app.amqp.queues.consume_from)
    options = {"queues": queues} if queues else {}
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30, **options):
            yield
    finally:
        app.amqp.queues.select(consumed)
        root.setLevel(level)
        root.handlers[:] = handlers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


class RedisServer:
    """A private redis-server this test may stop and start without touching anyone else's."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
        )
        assert wait_for(self._answers, timeout=10), "redis-server did not start"

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False


def use_broker(url: str | None, transport_options: dict[str, object]) -> None:
    """Point this process's Celery app at another broker: forget its connection and producer pools
    (``app.close()`` alone keeps the producer pool, which would go on publishing to the old URL).
    Celery reads the CELERY_BROKER_URL environment variable before its own setting, so both change.

    The old pools are not closed: they are kombu's, one per URL, handed out again when a test switches
    back; a closed one fails every later publish with "Acquire on closed pool"."""
    if url is None:
        os.environ.pop("CELERY_BROKER_URL", None)
    else:
        os.environ["CELERY_BROKER_URL"] = url
    app.conf.broker_url, app.conf.broker_transport_options = url, transport_options
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture(name="broker")
def private_broker() -> Iterator[RedisServer]:
    """A private redis-server on a free port as the broker of this process and of the Celery and web
    processes a test starts (import it into a test module to use the fixture ``broker``)."""
    if shutil.which("redis-server") is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is required in CI")
        pytest.skip("redis-server is not installed")
    server = RedisServer(free_port())
    server.start()
    saved_env = os.environ.get("CELERY_BROKER_URL")
    saved_options = app.conf.broker_transport_options
    use_broker(server.url, {})  # this process publishes to the private broker too
    yield server
    use_broker(saved_env, saved_options)
    if saved_env is None:
        app.conf.broker_url = settings.CELERY_BROKER_URL
    server.stop()


def database_url() -> str:
    """The URL of this test's database (the test database pytest-django made), for subprocesses."""
    db = connection.settings_dict
    if connection.vendor == "postgresql":
        user = db.get("USER") or "postgres"
        return f"postgres://{user}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"
    return f"sqlite:///{db['NAME']}"


def subprocess_env(*, broker_url: str | None, db_url: str, **extra: str) -> dict[str, str]:
    """This process's environment with the database and broker of a test's servers; ``broker_url``
    None means the embedded file-system broker under READINESS_VAR_DIR."""
    env = {**os.environ, "DATABASE_URL": db_url, **extra}
    if broker_url is None:
        env.pop("CELERY_BROKER_URL", None)
    else:
        env["CELERY_BROKER_URL"] = broker_url
    return env


# --- Celery and gunicorn exactly as the deployment files run them -----------------------------------

PROCFILE = "procfile"  # `make run` (honcho): one worker with beat inside it, prefork
COMPOSE = "compose"  # docker-compose.yml: prefork workers without gossip and mingle, beat apart
SOLO = "solo"  # test-only: one process that runs the tasks itself, for tests that must kill exactly it
DEPLOYMENTS = (PROCFILE, COMPOSE)

# ``${NAME:-default}`` in docker-compose.yml: the tests run with the defaults a fresh .env gives.
_COMPOSE_VARIABLE = re.compile(r"\$\{[A-Z_]+:-([^}]*)\}")


def _compose_service_command(service: str) -> list[str]:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return [_COMPOSE_VARIABLE.sub(r"\1", str(part)) for part in compose["services"][service]["command"]]


def _procfile_command(process: str) -> list[str]:
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        if name.strip() == process:
            return shlex.split(command)
    raise LookupError(f"the Procfile has no {process!r} process")


def compose_worker_services() -> list[str]:
    """The compose services that run a Celery worker: one per queue group."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return [
        name
        for name, service in compose["services"].items()
        if "celery" in service.get("command", [])[:1] and "worker" in service["command"]
    ]


def consumed_queues(arguments: list[str]) -> set[str]:
    """The queues a ``celery worker`` with these arguments consumes: its ``--queues``, or without it
    every queue the settings declare."""
    for argument in arguments:
        if argument.startswith("--queues="):
            return set(argument.split("=", 1)[1].split(","))
    return {queue.name for queue in settings.CELERY_TASK_QUEUES}


def _compose_workers_as_one() -> list[str]:
    """Compose's worker services as one process: their shared command, consuming the queues of them
    all. What a test runs when it needs "the deployed worker" to do every kind of work; the services
    differ only in their queues and their number of processes (asserted here), so the one process
    runs with the options each of them has."""
    commands = [_compose_service_command(name) for name in compose_worker_services()]
    assert commands, "docker-compose.yml runs no Celery worker"

    def options(command: list[str]) -> list[str]:
        return [part for part in command if not part.startswith(("--queues=", "--concurrency="))]

    assert all(options(command) == options(commands[0]) for command in commands), commands
    queues = sorted(set().union(*(consumed_queues(command) for command in commands)))
    return [f"--queues={','.join(queues)}" if part.startswith("--queues=") else part for part in commands[0]]


def celery_arguments(deployment: str, process: str, *, state_dir: Path) -> list[str]:
    """The ``celery`` arguments a deployment starts ``process`` (worker or beat) with, read from the
    file that deploys it, so a test cannot drift from production. Beat's local state (the Procfile's
    ``--schedule``) goes to ``state_dir``. Compose's ``worker`` is its queue groups' workers as one
    process (``_compose_workers_as_one``); a group's own service is asked for by its name."""
    if deployment == SOLO:
        assert process == "worker"
        return ["-A", "readiness", "worker", "--pool=solo", "--loglevel=WARNING"]
    if deployment == PROCFILE:
        assert process == "worker", "the Procfile runs beat inside the worker (--beat)"
        command = _procfile_command("worker")
    elif process == "worker":
        command = _compose_workers_as_one()
    else:
        command = _compose_service_command(process)
    assert Path(command[0]).name == "celery", command
    return [
        f"--schedule={state_dir / 'celerybeat-schedule'}" if part.startswith("--schedule=") else part
        for part in command[1:]
    ]


def gunicorn_arguments() -> list[str]:
    """The Dockerfile's CMD (what compose's web service runs too), without its ``--bind``: gunicorn
    takes the rest of its settings from gunicorn.conf.py in the folder it starts in."""
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("CMD "):
            command = json.loads(line.removeprefix("CMD "))
            break
    else:
        raise LookupError("the Dockerfile has no CMD")
    assert command[0] == "gunicorn", command
    bind = command.index("--bind")
    return command[1:bind] + command[bind + 2 :]


def gunicorn_settings(env: dict[str, str]) -> dict[str, Any]:
    """gunicorn.conf.py's settings as a gunicorn started with ``env`` reads them."""
    with mock.patch.dict(os.environ, env, clear=True):
        return runpy.run_path(str(ROOT / "gunicorn.conf.py"))


class CeleryProcess:
    """A ``celery`` subprocess (worker or beat) on the private broker and this test's database, in a
    session of its own, so a kill reaches its pool's children as a container's end would."""

    process_name = "worker"

    def __init__(
        self,
        broker_url: str | None,
        db_url: str | None = None,
        log: Path | None = None,
        *,
        deployment: str = COMPOSE,
    ) -> None:
        self.env = subprocess_env(broker_url=broker_url, db_url=db_url or database_url())
        self.log = log  # where its output goes (default: this process's)
        self.deployment = deployment
        self.state_dir = Path(tempfile.mkdtemp(prefix="readiness-celery-"))
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def arguments(self) -> list[str]:
        return celery_arguments(self.deployment, self.process_name, state_dir=self.state_dir)

    def start(self) -> None:
        self.state_dir.mkdir(exist_ok=True)  # stop() removed it; a test may start the process again
        output = self.log.open("ab") if self.log is not None else None
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", *self.arguments()],
            cwd=ROOT,
            env=self.env,
            stdout=output,
            stderr=output,
            start_new_session=True,
        )
        if output is not None:
            output.close()
        self.starts += 1

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL to the whole process group: the main process and its pool's children at once, with
        no chance to finish, commit, acknowledge or roll back by themselves."""
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.alive:
            assert self.process is not None
            self.process.terminate()  # a warm shutdown: the tasks in hand finish first
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        if self.process is not None:
            # Children a stopped (or crashed) main process left behind go with it.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        shutil.rmtree(self.state_dir, ignore_errors=True)


class Worker(CeleryProcess):
    """A Celery worker as deployed (docker-compose.yml's by default, prefork), or, with
    ``deployment=SOLO``, one process that runs the tasks itself."""

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Return once the worker answers a ping, that is consumes: a prefork worker on a busy machine
        takes many seconds to start its pool, which a test timing the pipeline must not count."""

        def answers() -> bool:
            assert self.alive, "the worker exited while starting"
            return bool(app.control.ping(timeout=0.5))

        assert wait_for(answers, timeout=timeout), f"the worker did not answer a ping within {timeout:.0f} s"


class Beat(CeleryProcess):
    """docker-compose.yml's beat, the one scheduler beside the workers."""

    process_name = "beat"


# How long a cold gunicorn may take over its first requests: its processes import Django, DRF, numpy
# and scipy, which takes a minute on a machine whose two cores are shared by several test runs.
WARM_UP_SECONDS = 120.0


class WebServer:
    """gunicorn serving the app on a free port as the Dockerfile runs it (gunicorn.conf.py's gthread
    processes and threads), so per-process state is shared by concurrent requests as in production."""

    def __init__(
        self,
        env: dict[str, str],
        *,
        workers: int | None = None,
        threads: int | None = None,
        log: Path | None = None,
    ) -> None:
        # Fewer processes or threads than deployed through the variables a deployment sets them with.
        overrides = {"WEB_WORKERS": workers, "WEB_THREADS": threads}
        self.env = env | {name: str(value) for name, value in overrides.items() if value is not None}
        self.port = free_port()
        self.arguments = gunicorn_arguments()
        deployed = gunicorn_settings(self.env)
        self.workers, self.threads = deployed["workers"], deployed["threads"]
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        output = self.log.open("ab") if self.log is not None else subprocess.DEVNULL
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                *self.arguments,
                "--bind",
                f"127.0.0.1:{self.port}",
                # Above any request the fault tests make, so a hang shows as a client timeout, not a
                # worker gunicorn killed and restarted behind the test's back.
                "--timeout",
                "120",
                # gunicorn's control socket defaults to one path per user (~/.gunicorn): test servers
                # running side by side would take it from each other. Nothing here uses it.
                "--no-control-socket",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=output,
            stderr=output,
        )
        if self.log is not None:
            output.close()  # type: ignore[union-attr]
        assert wait_for(lambda: port_open(self.port), timeout=60), "gunicorn did not start"
        self._warm_up()

    def _warm_up(self) -> None:
        """First requests in every gunicorn process, so the URLconf and views are imported before a
        test measures answer times: a cold process on a busy machine takes seconds over its first
        request, and the port is open (the arbiter's) before any process has booted."""
        answered: list[int] = []

        def request() -> None:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=WARM_UP_SECONDS)
            try:
                conn.request(
                    "POST", "/api/v1/metrics", body=b"{}", headers={"Content-Type": "application/json"}
                )
                answered.append(conn.getresponse().status)
            except (OSError, http.client.HTTPException):
                pass  # counted below: no answer at all fails the start
            finally:
                conn.close()

        threads = [threading.Thread(target=request) for _ in range(2 * self.workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert answered, f"gunicorn answered none of {len(threads)} requests in {WARM_UP_SECONDS:.0f} s"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None


class PostgresUnavailable(RuntimeError):
    """The private cluster could not be created or started; the message says why."""


class PostgresCluster:
    """A private PostgreSQL cluster in a temporary folder, on a free port, with trust authentication,
    which a test may stop, crash and restart: never the shared server on 5432.

    initdb refuses to run as root, so as root every server command runs as the ``postgres`` OS user in a
    folder that user owns.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.bin = self._binaries()
        self.folder = Path(tempfile.mkdtemp(prefix="readiness-pg-"))
        self.data = self.folder / "data"
        self.logfile = self.folder / "server.log"
        self.as_postgres: list[str] = []
        if os.geteuid() == 0:
            if shutil.which("runuser") is None:
                raise PostgresUnavailable("running as root, and runuser is missing to become postgres")
            shutil.chown(self.folder, user="postgres", group="postgres")
            self.as_postgres = ["runuser", "-u", "postgres", "--"]

    def url(self, name: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    @staticmethod
    def _binaries() -> Path:
        for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
            if (Path(candidate) / "initdb").exists():
                return Path(candidate)
        found = shutil.which("initdb")
        if found is None:
            raise PostgresUnavailable("no initdb under /usr/lib/postgresql/*/bin nor on PATH")
        return Path(found).parent

    def _run(self, *command: str, timeout: float = 120) -> None:
        result = subprocess.run(
            [*self.as_postgres, *command], capture_output=True, text=True, timeout=timeout, check=False
        )
        if result.returncode != 0:
            raise PostgresUnavailable(
                f"{' '.join(command)} failed ({result.returncode}): {result.stderr or result.stdout}"
                f"\n{self.log_tail()}"
            )

    def init(self) -> None:
        # --no-sync: the cluster is thrown away after the test; fsync stays on while it runs.
        self._run(
            str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync"
        )

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} -c max_connections=50"
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.logfile),
            "-o",
            options,
            "-w",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        """``fast`` ends sessions and checkpoints; ``immediate`` is a crash: no checkpoint, WAL replay at
        the next start (so only what was committed, and flushed, may come back)."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def create_database(self, name: str) -> None:
        self._run(str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)

    def destroy(self) -> None:
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(PostgresUnavailable):
                self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
