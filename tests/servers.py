"""Real servers a test may start, stop, kill and restart without touching anyone else's: a private
redis-server, a Celery worker, a gunicorn web server and a private PostgreSQL cluster, each a
subprocess on a free port. Shared by the ingestion pipeline tests and the fault suite."""

from __future__ import annotations

import contextlib
import glob
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

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


class Worker:
    """A Celery worker subprocess on the private broker and this test's database."""

    def __init__(self, broker_url: str | None, db_url: str | None = None, log: Path | None = None) -> None:
        self.env = subprocess_env(broker_url=broker_url, db_url=db_url or database_url())
        self.log = log  # where its output goes (default: this process's)
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        output = self.log.open("ab") if self.log is not None else None
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "readiness",
                "worker",
                "--pool=solo",
                "--loglevel=WARNING",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=output,
            stderr=output,
        )
        if output is not None:
            output.close()
        self.starts += 1

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


class WebServer:
    """gunicorn serving the app on a free port, as in production (sync workers, one request each)."""

    def __init__(self, env: dict[str, str], *, workers: int = 2, log: Path | None = None) -> None:
        self.env, self.workers, self.port = env, workers, free_port()
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
                "readiness.wsgi:application",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(self.workers),
                # Above any request the fault tests make, so a hang shows as a client timeout, not a
                # worker gunicorn killed and restarted behind the test's back.
                "--timeout",
                "120",
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
        """A first request per gunicorn worker, so the URLconf and views are imported before a test
        measures answer times: a cold worker on a busy machine takes seconds over its first request."""

        def request() -> None:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            try:
                conn.request(
                    "POST", "/api/v1/metrics", body=b"{}", headers={"Content-Type": "application/json"}
                )
                conn.getresponse().read()
            finally:
                conn.close()

        threads = [threading.Thread(target=request) for _ in range(2 * self.workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

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
