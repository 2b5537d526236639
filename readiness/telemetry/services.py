"""The ingestion pipeline: accept a push durably, apply it to the metric table exactly once.

A small push (at most DIRECT_MAX_POINTS points) is applied by the request itself:

API  --validate-->  IngestBatch ("done") + its points, one statement  -->  evaluation request  --202-->

A larger one goes through the outbox, so the request never holds a transaction open over a big COPY:

API  --validate-->  IngestBatch (pending, committed)  --202-->  client
                          |  on commit: enqueue  (the sweeper re-enqueues what the broker lost)
worker: lock pending batches (SKIP LOCKED) -> COPY rows into MetricPoint -> mark done, one transaction

Both write points as ``_copy_points`` does, the one writer of the metric table (the small push's one
statement is its INSERT with the batch's in front).
"""

from __future__ import annotations

import hashlib
import io
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import orjson
from django.db import DataError, IntegrityError, connection, transaction
from django.db.backends.utils import CursorWrapper
from django.utils import timezone

from readiness.observability.metrics import record_batches_applied
from readiness.projects.models import evaluation_flip_statement
from readiness.publishing import publish
from readiness.telemetry.models import IngestBatch, MetricPoint, RollupDirtyMinute
from readiness.telemetry.provenance import may_write_reserved
from readiness.telemetry.push import ParsedPush, parse_push
from readiness.telemetry.rollups.marks import closed_minutes, copy_rows_points, rollups_mark
from readiness.telemetry.signals import project_evidence_changed

log = logging.getLogger(__name__)

# A push of at most this many points is written by the request itself (batch record and points in one
# transaction), so the worker only evaluates: under single-point load the drains took ~40% of the
# CPU, and a one-point COPY costs the request less than its outbox row costs the worker. Larger
# batches keep the outbox, where one COPY amortises many of them and a 10,000-point write never holds
# a web thread's transaction open.
DIRECT_MAX_POINTS = 100
# Up to this many points the writer INSERTs them in one statement, beyond it streams them with COPY.
INSERT_MAX_POINTS = DIRECT_MAX_POINTS
# How many pending batches one worker applies in one transaction: amortises the commit across a burst
# of small pushes while bounding the memory a run of 10,000-point batches can take.
APPLY_MAX_BATCHES = 20
APPLY_MAX_POINTS = 50_000
# A batch not applied after this long is presumed lost by the broker or a dead worker.
SWEEP_AFTER = timedelta(minutes=1)
# A drain is published due this far ahead, and a push committed at least DRAIN_MARGIN before a
# scheduled drain's due time rides on it: ~20 messages a second per web process at most.
DRAIN_DELAY = 0.05
DRAIN_MARGIN = 0.01
# One drain task applies batches for at most this long, then yields the worker to other tasks.
DRAIN_BUDGET = 10.0
# SQLite (the embedded default) has one writer at a time, and a connection waiting for the write lock
# polls for it, at most 100 ms apart (SQLite's busy handler). A drain committing one transaction after
# another kept it from pushes that web threads were waiting to insert until their 20 s timeout ran
# out: a 503. Between two transactions a drain leaves the lock free for longer than one poll.
SQLITE_WRITER_GAP = 0.15


class IdempotencyConflict(Exception):
    """The Idempotency-Key was used before with a different body (HTTP 409)."""


class DrainSchedule:
    """Coalesces the "apply pending batches" messages a web process publishes.

    Publishing one Celery message per push costs the request about a millisecond and the worker a task.
    Instead a process publishes one drain task due a few milliseconds ahead, and a push committed before
    that due time needs no message of its own: the drain, which applies every pending batch, runs after
    it. Celery never runs a task before its due time, so no committed batch waits for the next message;
    the sweeper remains the backstop for a message the broker lost.
    """

    def __init__(self) -> None:
        self.due_at = 0.0
        self.lock = threading.Lock()

    def after_commit(self) -> None:
        from readiness.telemetry.tasks import batches_drain

        now = time.time()
        with self.lock:
            if now < self.due_at - DRAIN_MARGIN:
                return
            self.due_at = now + DRAIN_DELAY
            eta = self.due_at
        # Runs after commit: the batch is durable, so a broker outage must not fail the request;
        # the sweeper re-enqueues whatever could not be enqueued here.
        publish(batches_drain, what="a drain of pending batches", eta=datetime.fromtimestamp(eta, UTC))


drain_schedule = DrainSchedule()


def batch_ingest(
    *,
    project_id: int,
    body: bytes,
    source: str,
    idempotency_key: str | None = None,
    token_id: int | None = None,
    now: datetime | None = None,
) -> tuple[uuid.UUID, int, bool]:
    """Validate a push body and store it durably (``batch_store``), its points marked with ``source``.
    Returns the batch id, the number of points accepted and whether the batch is new (False: an
    idempotent replay of an earlier push). Reserved ``health.*`` names are refused unless ``source``
    is a probe's."""
    now = now or timezone.now()
    digest = hashlib.sha256(body).hexdigest()
    if idempotency_key is not None:
        # A replay answers without parsing the body again.
        replay = _replay(project_id=project_id, key=idempotency_key, digest=digest)
        if replay is not None:
            return replay.id, replay.accepted, False
    parsed = parse_push(body, now=now, reserved_allowed=may_write_reserved(source))
    return batch_store(
        project_id=project_id,
        parsed=parsed,
        source=source,
        digest=digest,
        idempotency_key=idempotency_key,
        token_id=token_id,
        now=now,
    )


def batch_store(
    *,
    project_id: int,
    parsed: ParsedPush,
    source: str,
    digest: str,
    idempotency_key: str | None = None,
    token_id: int | None = None,
    now: datetime,
) -> tuple[uuid.UUID, int, bool]:
    """Store validated points durably as one pending batch and schedule the drain that applies them.

    ``digest`` identifies the request's body for idempotency: the same key with the same digest is a
    replay (the earlier batch's id and count, False), with another digest an IdempotencyConflict.
    Returns the batch id, the number of points accepted and whether the batch is new.
    """
    if parsed.count <= DIRECT_MAX_POINTS:
        stored = _batch_write(
            project_id=project_id,
            parsed=parsed,
            source=source,
            digest=digest,
            idempotency_key=idempotency_key,
            token_id=token_id,
            now=now,
        )
        if stored is not None:
            return stored
    batch_id = uuid.uuid4()
    values = _batch_values(
        batch_id=batch_id,
        project_id=project_id,
        parsed=parsed,
        source=source,
        digest=digest,
        idempotency_key=idempotency_key,
        token_id=token_id,
        now=now,
    ) | {"rows": parsed.rows, "state": IngestBatch.State.PENDING}
    try:
        # One INSERT in autocommit: a single statement is atomic and durable once it returns, without
        # the BEGIN/COMMIT round trips (and ORM compilation) an atomic block adds to every push. Inside
        # a caller's transaction a savepoint keeps a refused key from aborting the whole transaction.
        if connection.in_atomic_block and idempotency_key is not None:
            with transaction.atomic():
                _insert(IngestBatch, values)
        else:
            _insert(IngestBatch, values)
    except IntegrityError:
        # The key was used before (a replay, unless its body differs), or two requests with one key
        # raced and this one lost.
        replay = _replay(project_id=project_id, key=idempotency_key or "", digest=digest)
        if replay is None:
            raise
        return replay.id, replay.accepted, False
    transaction.on_commit(drain_schedule.after_commit)
    return batch_id, parsed.count, True


def _batch_values(
    *,
    batch_id: uuid.UUID,
    project_id: int,
    parsed: ParsedPush,
    source: str,
    digest: str,
    idempotency_key: str | None,
    token_id: int | None,
    now: datetime,
) -> dict[str, object]:
    """The columns every stored batch has, whichever path stores it (rows and state are the path's)."""
    return {
        "id": batch_id,
        "project_id": project_id,
        "token_id": token_id,
        "idempotency_key": idempotency_key,
        "body_sha256": digest,
        "source": source,
        "accepted": parsed.count,
        "received_at": now,
        "attempts": 0,
        "error": "",
    }


def _batch_write(
    *,
    project_id: int,
    parsed: ParsedPush,
    source: str,
    digest: str,
    idempotency_key: str | None,
    token_id: int | None,
    now: datetime,
) -> tuple[uuid.UUID, int, bool] | None:
    """The small push's path: the batch record (already ``done``, so a replay of its Idempotency-Key
    finds it) and its points, all or nothing, then the project's evaluation request. A 202 means
    stored; an outage (an OperationalError, raised) before the points were stored means nothing
    stored, and the client retries with its Idempotency-Key. Returns what ``batch_store``
    returns, or None when the database refused the points although validation passed them: the caller
    then stores the batch pending, and the worker sets it aside as ``failed`` as for any batch."""
    batch_id = uuid.uuid4()
    values = _batch_values(
        batch_id=batch_id,
        project_id=project_id,
        parsed=parsed,
        source=source,
        digest=digest,
        idempotency_key=idempotency_key,
        token_id=token_id,
        now=now,
    ) | {"rows": None, "state": IngestBatch.State.DONE, "processed_at": now}
    try:
        requested = _batch_and_points_insert(values, [(project_id, source, parsed.rows)])
    except _refused_errors() as exc:
        # A unique key already taken is a replay (or a conflict); anything else the database refused.
        if isinstance(exc, IntegrityError) and idempotency_key is not None:
            replay = _replay(project_id=project_id, key=idempotency_key, digest=digest)
            if replay is not None:
                return replay.id, replay.accepted, False
        log.warning("a push's points were refused by the database; storing it for the worker: %s", exc)
        return None
    # Where the write did not record the evaluation request itself, after the points, not with them: a
    # process that dies in between leaves the evaluation to the next push or the periodic tick, which
    # is what a request riding on a pending one risks anyway.
    project_evidence_changed.send(sender=IngestBatch, project_id=project_id, evaluation_requested=requested)
    # Counted once committed: inside OTLP's transaction the export may still roll back.
    transaction.on_commit(lambda: record_batches_applied(batches=1, points=parsed.count))
    return batch_id, parsed.count, True


def _batch_and_points_insert(values: dict[str, object], batches: list[tuple[int, str, bytes]]) -> bool | None:
    """The small push's write: its batch record and its points, all or nothing. On PostgreSQL outside
    a transaction, one statement in autocommit (the batch INSERT, the marks of closed minutes, the
    points INSERT and the project's evaluation request, as data-modifying WITHs): atomic and durable
    once it returns, one round trip where BEGIN, the INSERTs and COMMIT took four or five, and a push's
    CPU is mostly its round trips. Returns whether that statement flipped the evaluation request
    (``evaluation_flip_statement``); None when the write did not ask, which the signal's receiver then
    does: inside a caller's transaction (OTLP's) a savepoint, so a refusal leaves that transaction
    usable; elsewhere (SQLite) one transaction."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        with transaction.atomic():
            _insert(IngestBatch, values)
            _copy_points(batches)
        return None
    batch_sql, params = _insert_statement(IngestBatch, values)
    parts = [f"batch AS ({batch_sql})"]
    marks = _marks_insert_statement(batches)
    if marks is not None:
        parts.append(f"marks AS ({marks[0]})")
        params += marks[1]
    points_sql, points_params = _points_insert_statement(batches)
    parts.append(f"points AS ({points_sql})")
    params += points_params
    # The request rides in the same statement: one round trip fewer per push, and the flag commits
    # with the points it asks to evaluate. A small push has one project.
    (project_id,) = {project_id for project_id, _, _ in batches}
    flip_sql, flip_params = evaluation_flip_statement(project_id=project_id, now=timezone.now())
    parts.append(f"flip AS ({flip_sql})")
    params += flip_params
    with _binding_cursor() as cursor:
        cursor.execute(f"WITH {', '.join(parts)} SELECT count(*) FROM flip", params)  # noqa: S608 -- placeholders only
        (flipped,) = cursor.fetchone()
    return bool(flipped)


def _marks_insert_statement(batches: list[tuple[int, str, bytes]]) -> tuple[str, list[object]] | None:
    """The INSERT marking the closed minutes the batches' points land in, as ``rollups_mark`` marks
    them, for the one-statement write: the mark must commit with the points
    (readiness/telemetry/rollups/marks.py says why). None when every point is in the open minute."""
    closed = closed_minutes(
        point for project_id, _, rows in batches for point in copy_rows_points(project_id, rows)
    )
    if not closed:
        return None
    values = ", ".join(["(%s, %s, %s)"] * len(closed))
    table = RollupDirtyMinute._meta.db_table
    sql = f"INSERT INTO {table} (project_id, metric, minute) VALUES {values} ON CONFLICT DO NOTHING"  # noqa: S608 -- placeholders only
    return sql, [field for mark in closed for field in mark]


def batches_store(*, batches: list[tuple[int, str, bytes]], now: datetime) -> int:
    """Validate and store many small batches (project id, source, body) in one INSERT: what a probe
    cycle writes, one batch per target since a batch has one source. No idempotency keys (a cycle is
    never replayed), so no conflicts. Raises PushInvalid on the first invalid body, storing nothing.
    Returns the number of points stored."""
    rows = []
    for project_id, source, body in batches:
        parsed = parse_push(body, now=now, reserved_allowed=may_write_reserved(source))
        rows.append(
            IngestBatch(
                id=uuid.uuid4(),
                project_id=project_id,
                source=source,
                body_sha256=hashlib.sha256(body).hexdigest(),
                accepted=parsed.count,
                rows=parsed.rows,
                state=IngestBatch.State.PENDING,
                received_at=now,
            )
        )
    IngestBatch.objects.bulk_create(rows, batch_size=500)
    transaction.on_commit(drain_schedule.after_commit)
    return sum(row.accepted for row in rows)


def _insert(model: type[IngestBatch], values: dict[str, object]) -> None:
    with _binding_cursor() as cursor:
        cursor.execute(*_insert_statement(model, values))


def _insert_statement(model: type[IngestBatch], values: dict[str, object]) -> tuple[str, list[object]]:
    """One row's INSERT into ``model``'s table: the SQL and its parameters."""
    fields = [model._meta.get_field(name) for name in values]
    params = [
        field.get_db_prep_save(value, connection)
        for field, value in zip(fields, values.values(), strict=True)
    ]
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    return f"INSERT INTO {model._meta.db_table} ({columns}) VALUES ({placeholders})", params  # noqa: S608 -- names come from the model, values are parameters


def _binding_cursor() -> CursorWrapper:
    """A cursor that sends parameters apart from the SQL. Django's psycopg cursors bind on the client:
    a batch's rows (up to 5 MB) would be inlined into the statement as hex, three copies of twice their
    size at once (36 MB of memory for 4.8 MB of rows, measured); sent apart and in binary they cost one
    copy. Wrapped like any Django cursor: database errors become Django's, and tests count the query."""
    if connection.vendor != "postgresql":
        return connection.cursor()
    # Imported here: the embedded default (SQLite) never loads the PostgreSQL backend.
    from django.db.backends.postgresql.base import ServerBindingCursor

    connection.ensure_connection()
    raw = ServerBindingCursor(connection.connection)
    return connection.make_debug_cursor(raw) if connection.queries_logged else connection.make_cursor(raw)


def _replay(*, project_id: int, key: str, digest: str) -> IngestBatch | None:
    earlier = (
        IngestBatch.objects.filter(project_id=project_id, idempotency_key=key)
        .only("id", "accepted", "body_sha256")
        .first()
    )
    if earlier is not None and earlier.body_sha256 != digest:
        raise IdempotencyConflict("this Idempotency-Key was used with a different body")
    return earlier


def batches_apply(*, first: uuid.UUID | str | None = None) -> int:
    """Apply pending batches (``first`` first, then the oldest others) in one transaction.

    Exactly once: the batches are locked FOR UPDATE SKIP LOCKED and re-checked as pending, so two
    workers never apply one batch twice; the points and the ``done`` mark commit together, so a worker
    killed mid-copy leaves the batch pending for a retry, with nothing half-applied.
    Returns the number of points applied.
    """
    with transaction.atomic():
        pending = IngestBatch.objects.filter(state=IngestBatch.State.PENDING)
        if connection.features.has_select_for_update_skip_locked:
            pending = pending.select_for_update(skip_locked=True, of=("self",))
        claimed: list[IngestBatch] = []
        if first is not None:
            claimed.extend(pending.filter(pk=first).only("id", "project_id", "source", "accepted"))
        points = sum(b.accepted for b in claimed)
        if points < APPLY_MAX_POINTS:
            for batch in (
                pending.exclude(pk__in=[b.pk for b in claimed])
                .order_by("received_at")
                .only("id", "project_id", "source", "accepted")[:APPLY_MAX_BATCHES]
            ):
                if points + batch.accepted > APPLY_MAX_POINTS and claimed:
                    break
                claimed.append(batch)
                points += batch.accepted
        if not claimed:
            return 0
        rows_by_batch = dict(
            IngestBatch.objects.filter(pk__in=[b.pk for b in claimed]).values_list("id", "rows")
        )
        applied = _copy_isolating_refused(claimed, rows_by_batch)
        IngestBatch.objects.filter(pk__in=[b.pk for b in applied]).update(
            state=IngestBatch.State.DONE, rows=None, processed_at=timezone.now()
        )
        for project_id in {b.project_id for b in applied}:
            project_evidence_changed.send(sender=IngestBatch, project_id=project_id)
    points = sum(b.accepted for b in applied)
    record_batches_applied(batches=len(applied), points=points)
    return points


def _refused_errors() -> tuple[type[Exception], ...]:
    """What the database raises for rows it will never take (bad data, a broken constraint), as
    opposed to an outage (OperationalError), after which the same rows must simply be tried again.
    COPY runs on psycopg's own cursor, so its errors arrive unwrapped by Django."""
    refused: tuple[type[Exception], ...] = (DataError, IntegrityError, ValueError)
    if connection.vendor == "postgresql":
        import psycopg

        refused += (psycopg.errors.DataError, psycopg.errors.IntegrityError)
    return refused


def _copy_isolating_refused(claimed: list[IngestBatch], rows: dict[uuid.UUID, bytes]) -> list[IngestBatch]:
    """Copy the claimed batches' points together (the fast path); if the database refuses them, copy
    each batch alone, so one poisoned batch is set aside as ``failed`` instead of holding every batch
    behind it pending for ever. Returns the batches applied."""
    refused = _refused_errors()
    groups = [claimed]
    applied: list[IngestBatch] = []
    while groups:
        group = groups.pop()
        try:
            with transaction.atomic():  # a savepoint: a refused COPY leaves the claim's transaction usable
                _copy_points([(b.project_id, b.source, bytes(rows[b.pk])) for b in group])
            applied.extend(group)
        except refused as exc:
            if len(group) > 1:
                groups.extend([batch] for batch in group)  # find which one: each alone
                continue
            (batch,) = group
            log.error("ingest batch %s refused by the database, set aside as failed: %s", batch.pk, exc)
            IngestBatch.objects.filter(pk=batch.pk).update(
                state=IngestBatch.State.FAILED, error=str(exc)[:2000], processed_at=timezone.now()
            )
    return applied


# COPY's text format gives these characters a meaning; a source (a token's or a check's name, chosen
# by people) may hold any of them.
_COPY_TEXT_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_text(value: str) -> str:
    """``value`` as one field of a COPY text row."""
    return value.translate(_COPY_TEXT_ESCAPES)


def _copy_points(batches: list[tuple[int, str, bytes]]) -> None:
    """Insert the batches' points, each marked with its batch's project and source: the one writer of
    the metric table, for the request's small pushes and the worker's batches alike. It also marks the
    closed minutes they land in for re-folding (a batch applied late, a push with an old ts)."""
    _rollups_mark(batches)
    if (
        connection.vendor == "postgresql"
        and sum(rows.count(b"\n") for _, _, rows in batches) > INSERT_MAX_POINTS
    ):
        # COPY is PostgreSQL's bulk path: one statement streams every row, no per-row parse or plan.
        with connection.cursor() as cursor:
            sql = "COPY telemetry_metricpoint (project_id, source, metric, ts, value, labels) FROM STDIN"
            with cursor.cursor.copy(sql) as copy:
                for project_id, source, rows in batches:
                    prefix = f"{project_id}\t{copy_text(source)}\t".encode()
                    copy.write(b"".join(prefix + line for line in rows.splitlines(keepends=True)))
        return
    if connection.vendor == "postgresql":
        # A few rows: one INSERT is one round trip where COPY takes two (its start, then its end).
        with _binding_cursor() as cursor:
            cursor.execute(*_points_insert_statement(batches))
        return
    # Elsewhere (the embedded SQLite default) an executemany of the same rows.
    MetricPoint.objects.bulk_create(
        [
            MetricPoint(
                project_id=project_id,
                source=source,
                metric=metric,
                ts=datetime.fromisoformat(ts),
                value=value,
                labels=orjson.loads(labels),
            )
            for project_id, source, metric, ts, value, labels in _decoded_points(batches)
        ],
        batch_size=2_000,
    )


def _rollups_mark(batches: list[tuple[int, str, bytes]]) -> None:
    """Mark the closed minutes the batches' points land in for re-folding (a batch applied late, a
    push with an old ts)."""
    rollups_mark(_batches_minutes(batches))


def _batches_minutes(batches: list[tuple[int, str, bytes]]) -> set[tuple[int, str, datetime]]:
    """(project id, metric, minute) of every point of the batches, each once."""
    return {point for project_id, _, rows in batches for point in copy_rows_points(project_id, rows)}


def _points_insert_statement(batches: list[tuple[int, str, bytes]]) -> tuple[str, list[object]]:
    """The batches' points as one multi-row INSERT (PostgreSQL): the SQL and its parameters."""
    points = list(_decoded_points(batches))
    values = ", ".join(["(%s, %s, %s, %s::timestamptz, %s, %s::jsonb)"] * len(points))
    columns = "project_id, source, metric, ts, value, labels"
    sql = f"INSERT INTO telemetry_metricpoint ({columns}) VALUES {values}"  # noqa: S608 -- placeholders only
    return sql, [field for point in points for field in point]


def _decoded_points(
    batches: list[tuple[int, str, bytes]],
) -> Iterator[tuple[int, str, str, str, float, str]]:
    """The batches' COPY text rows as (project id, source, metric, ts, value, labels JSON). Only the
    labels carry escapes: metric names and times never hold a backslash, tab or newline, and the
    labels' JSON never a raw tab or newline (JSON escapes them), so undoubling backslashes is all."""
    for project_id, source, rows in batches:
        for line in io.BytesIO(rows):
            metric, ts, value, labels = line.decode().rstrip("\n").split("\t")
            yield project_id, source, metric, ts, float(value), labels.replace("\\\\", "\\")


def batches_sweep(*, now: datetime | None = None) -> int:
    """Re-enqueue the application of batches still pending a minute after they were accepted (the
    broker lost the message, a worker died mid-batch). Returns how many batches were overdue."""
    from readiness.telemetry.tasks import batches_drain

    cutoff = (now or timezone.now()) - SWEEP_AFTER
    overdue = IngestBatch.objects.filter(state=IngestBatch.State.PENDING, received_at__lt=cutoff).count()
    if overdue:
        batches_drain.delay()
    return overdue


def batches_drain(*, budget: float = DRAIN_BUDGET) -> tuple[int, bool]:
    """Apply pending batches until none is left or the time budget is spent. Returns the points
    applied and whether batches remain (the task then re-enqueues itself rather than hog a worker)."""
    deadline = time.monotonic() + budget
    applied = 0
    while True:
        points = batches_apply()
        applied += points
        if not points:
            return applied, False
        if time.monotonic() > deadline:
            return applied, True
        if connection.vendor == "sqlite":
            time.sleep(SQLITE_WRITER_GAP)
