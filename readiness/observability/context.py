"""What every log line carries about the work it belongs to: the HTTP request's id, or the Celery
task's id and name (and the id of the request that queued it, when one did).

Context variables, not thread locals: each gunicorn thread and each asyncio task sees its own value.
"""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar
from typing import Any

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
task_var: ContextVar[tuple[str, str] | None] = ContextVar("task", default=None)

# An incoming X-Request-ID (from a proxy or a client that traces its calls) is kept when it is short
# and made of safe characters; anything else would let a caller inject text into the logs.
REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# The header a published Celery message carries the request id in.
TASK_HEADER = "readiness_request_id"


def request_id_from(incoming: str | None) -> str:
    if incoming and REQUEST_ID_RE.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


# --- Celery: carry the request id into the tasks a request queues -----------------------------------


def task_publish_carries_request_id(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
    """``before_task_publish``: a task queued while answering a request (a drain after a push, an
    evaluation after an attestation) logs that request's id, so one id follows the work end to end."""
    request_id = request_id_var.get()
    if request_id is not None and headers is not None:
        headers[TASK_HEADER] = request_id


def task_started(task_id: str | None = None, task: Any = None, **kwargs: Any) -> None:
    """``task_prerun``: the task's own id and name, and its publisher's request id, for its logs."""
    request = getattr(task, "request", None)
    request_id = getattr(request, TASK_HEADER, None)
    if request_id is None:
        headers = getattr(request, "headers", None) or {}
        request_id = headers.get(TASK_HEADER)
    request_id_var.set(request_id if isinstance(request_id, str) else None)
    task_var.set((task_id or "", getattr(task, "name", "") or ""))


def task_finished(**kwargs: Any) -> None:
    """``task_postrun``: a worker process runs many tasks; none may log under the previous one's ids."""
    request_id_var.set(None)
    task_var.set(None)


def request_done(**kwargs: Any) -> None:
    """``request_finished``: the thread's next log lines belong to no request until the next one."""
    request_id_var.set(None)
