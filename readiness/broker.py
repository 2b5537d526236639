"""The Redis broker transport: kombu's own, with one guard that keeps a worker alive through an outage.

Celery 5.7.0 (celery/celery#10242, for celery/celery#9705) closes the consumer's connection right after
``Connection.collect()`` on a connection loss. ``collect()`` detaches the kombu transport
(``transport.client = None``) but leaves the connection's default channel in place, and that channel's
first close was cut short by the dead socket. So ``close()`` closes it a second time, and this time it
gets as far as restoring the unacknowledged messages (acks_late: the tasks in hand), for which kombu
5.7.0 builds a new Redis pool from ``transport.client.hostname``: ``AttributeError: 'NoneType' object
has no attribute 'hostname'``. That is no connection error, so Celery treats it as a bug of its own and
ends the worker ("Unrecoverable error"), right after logging "Restoring N unacknowledged message(s)".
The same happens to a task that finishes after the loss: its late ack goes through the detached
channel and raises from the event loop.

A detached channel cannot reach Redis any more, so the guard reports exactly that: a Redis
``ConnectionError``, which kombu and Celery ignore while tearing a lost connection down (and log for a
late ack), and the worker reconnects as it should. The messages it could not restore or ack stay in
Redis' unacknowledged set and are delivered again after ``visibility_timeout`` (settings.py); every
task is idempotent, and the sweepers re-enqueue lost work sooner. No upstream release fixes this yet
(checked with celery 5.7.0, kombu 5.7.0, redis 8.2.0): ``tests/faults/test_broker_outage.py``
reproduces the crash without the guard.
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis as kombu_redis
from redis.exceptions import ConnectionError as RedisConnectionError


class Channel(kombu_redis.Channel):
    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        transport = self.connection
        if transport is None or transport.client is None:
            raise RedisConnectionError(
                "this broker channel's connection was already collected after a connection loss"
            )
        return super()._connparams(asynchronous=asynchronous)


class Transport(kombu_redis.Transport):
    Channel = Channel
