"""Django's PostgreSQL backend with a health check that asks the socket, not the server.

Connections are persistent (CONN_MAX_AGE) and health-checked (CONN_HEALTH_CHECKS), so a connection the
server dropped (a restart, a failover, ``pg_terminate_backend``, an idle timeout) is replaced before a
request uses it, instead of failing that request. Django checks with a ``SELECT 1`` at the start of
every request and task: at hundreds of single-point pushes a second that was one round trip in three
of every push, and a third of a push's statements on the database's CPU.

A server that drops a connection says so on the connection's socket: it sends its FATAL message and
closes, and an idle connection's socket then polls readable (a message, or end of file). An idle,
healthy connection has nothing to read: the server sends only what was asked for, and the
notifications of a LISTEN, which Readiness never issues. So the check polls the socket without waiting
and calls the connection unusable when anything is there, or when libpq already knows it is broken.
A false alarm costs a reconnect, never an error. What neither check can see early is a peer that
vanished without a word (a cable cut): ``SELECT 1`` would wait on it as the request's query does.
"""

from __future__ import annotations

import select

from django.db.backends.postgresql import base
from psycopg import pq

# The states of a connection that can take a query: idle, or inside a transaction that has not failed
# (what ``SELECT 1`` would have succeeded in).
_USABLE_TRANSACTION_STATES = frozenset({pq.TransactionStatus.IDLE, pq.TransactionStatus.INTRANS})


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self) -> bool:
        connection = self.connection
        if connection is None or connection.closed or connection.broken:
            return False
        pgconn = connection.pgconn
        if pgconn.status != pq.ConnStatus.OK or pgconn.transaction_status not in _USABLE_TRANSACTION_STATES:
            return False
        try:
            readable, _, _ = select.select([pgconn.socket], [], [], 0)
        except (OSError, ValueError, base.Database.Error):
            return False  # no socket any more (libpq closed it) or an unusable descriptor
        return not readable
