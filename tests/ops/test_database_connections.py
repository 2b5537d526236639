"""Persistent PostgreSQL connections are health-checked without a round trip
(readiness/postgresql/base.py): a healthy connection is kept without a query, one the server dropped is
replaced before anything uses it, and one in a failed transaction is not taken for usable."""

from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg
import pytest
from django.db import DatabaseError, connection, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the socket health check is the PostgreSQL backend's"
)


@pytest.fixture
def observer() -> Iterator[psycopg.Connection]:
    """A second connection to the same database, to watch and to terminate the app's connection."""
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params, autocommit=True) as conn:
        yield conn


def backend_pid(db: BaseDatabaseWrapper) -> int:
    with db.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def last_statement(observer: psycopg.Connection, pid: int) -> str:
    row = observer.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()
    assert row is not None, f"backend {pid} is gone"
    return row[0]


def wait_gone(observer: psycopg.Connection, pid: int) -> None:
    deadline = time.monotonic() + 10
    while observer.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone():
        assert time.monotonic() < deadline, f"backend {pid} still there"
        time.sleep(0.02)


@pytest.mark.django_db(transaction=True)
def test_the_backend_is_readiness_postgresql() -> None:
    assert connection.settings_dict["ENGINE"] == "readiness.postgresql"
    assert connection.settings_dict["CONN_HEALTH_CHECKS"] is True


@pytest.mark.django_db(transaction=True)
def test_a_healthy_connection_is_usable_without_a_statement(observer: psycopg.Connection) -> None:
    pid = backend_pid(connection)
    with connection.cursor() as cursor:
        cursor.execute("SELECT 'the last statement'")

    assert connection.is_usable()

    # The server saw nothing after the request's own statement: no SELECT 1.
    assert last_statement(observer, pid) == "SELECT 'the last statement'"


@pytest.mark.django_db(transaction=True)
def test_a_connection_the_server_dropped_is_replaced_before_the_next_request_uses_it(
    observer: psycopg.Connection,
) -> None:
    dropped = backend_pid(connection)
    observer.execute("SELECT pg_terminate_backend(%s)", [dropped])
    wait_gone(observer, dropped)

    assert not connection.is_usable()
    # What a request's start does (request_started): the next cursor runs the health check, which
    # reconnects instead of handing the request a dead connection.
    connection.close_if_unusable_or_obsolete()
    replaced = backend_pid(connection)

    assert replaced != dropped


@pytest.mark.django_db(transaction=True)
def test_a_connection_in_a_failed_transaction_is_not_usable() -> None:
    with transaction.atomic():
        with pytest.raises(DatabaseError), connection.cursor() as cursor:
            cursor.execute("SELECT 1 / 0")
        assert not connection.is_usable()
        transaction.set_rollback(True)

    assert connection.is_usable()


@pytest.mark.django_db(transaction=True)
def test_a_closed_connection_is_not_usable() -> None:
    backend_pid(connection)
    connection.connection.close()

    assert not connection.is_usable()
    connection.close()
