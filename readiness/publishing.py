"""Publishing a Celery task for work that is already committed: never fail, never wait on the broker.

Every caller (a push's drain, an evaluation request, a notification's delivery) has committed its
work before it publishes, and each has a backstop that finds work whose message was lost: the batch
sweeper, the lost-request rule of evaluations, the delivery sweeper. So a broker that is down, or
worse silent (a connection that accepts and never answers), must cost a request at most a bounded
moment: the broker's socket timeouts (settings.py) bound one attempt, and after a failed attempt this
process stops trying for ``BROKER_BACKOFF`` seconds, so its threads do not queue up one timeout each
behind a broker that is gone; the backstops pick up whatever was not published meanwhile.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from celery import Task

log = logging.getLogger(__name__)

# One immediate reconnect (a pooled connection may be stale after a broker restart), never a wait.
PUBLISH_ONCE: dict[str, Any] = {
    "retry": True,
    "retry_policy": {"max_retries": 1, "interval_start": 0, "interval_step": 0},
}
# After a failed publish, how long this process skips publishing. Short against the backstops (a
# minute for batches, 30 s for deliveries), long against the bounded attempt it saves.
BROKER_BACKOFF = 5.0


class _Backoff:
    """The moment until which this process does not try the broker; shared by its threads."""

    def __init__(self) -> None:
        self.until = 0.0
        self.lock = threading.Lock()

    def open(self) -> bool:
        return time.monotonic() >= self.until

    def trip(self) -> None:
        with self.lock:
            self.until = time.monotonic() + BROKER_BACKOFF

    def reset(self) -> None:
        with self.lock:
            self.until = 0.0


backoff = _Backoff()


def publish(task: Task, *, what: str, args: tuple[Any, ...] = (), **options: Any) -> bool:
    """Publish ``task`` once; on any failure log it and return False (its backstop takes over)."""
    if not backoff.open():
        log.debug("broker backing off: %s left to its sweeper", what)
        return False
    try:
        task.apply_async(args, **options, **PUBLISH_ONCE)
    except Exception:
        backoff.trip()
        log.warning(
            "could not enqueue %s; its sweeper will pick it up (not trying the broker for %.0f s)",
            what,
            BROKER_BACKOFF,
            exc_info=True,
        )
        return False
    return True
