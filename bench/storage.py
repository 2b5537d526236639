"""Storage benchmark (issue 14, "Storage"; PRODUCT.md §9) on this machine's PostgreSQL.

1. bytes per raw point: N_size points (default 1,000,000) loaded with COPY, as the worker loads them,
   over the last few days; ``pg_total_relation_size`` of every partition (table, its indexes, TOAST,
   free-space and visibility maps) divided by the points, after VACUUM ANALYZE;
2. the daily retention job dropping 30 days of N points (default 100,000,000; ``--points`` to run
   smaller): the points are loaded 36 to 66 days back (past the 35-day raw retention), then
   ``retention_apply`` is timed as the Celery task runs it;
3. baseline: a bulk DELETE of the same 30 days at a smaller N (``--delete-points``, default 1,000,000):
   what retention would cost without partitions. Printed as the DELETE's time projected to N points
   (it grows with the rows) divided by the drop's time, and the drop's time at the smaller N beside
   it (it does not grow with them).

    python bench/storage.py [--points 100000000] [--size-points 1000000] [--delete-points 1000000]

Needs PostgreSQL (DATABASE_URL's server, default postgres://postgres@127.0.0.1:5432). Creates and drops
its own database. 100M points take about 15 GB and an hour or more to load on a small machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import sys
import time

import psycopg
from ingest import COPY_POINTS, ROOT, bench_database, drop_database, manage

RAW_RETENTION_DAYS = 35
DROPPED_DAYS = 30
# Rows per INSERT ... SELECT while loading the dropped days: each its own transaction, so a large N
# never holds one huge transaction (and its WAL) open.
LOAD_CHUNK = 1_000_000


def copy_points(db_url: str, project_id: int, n: int, *, newest: dt.datetime) -> None:
    """n points as the ingest path writes them (COPY, one label, a push source), one per 100 ms up to
    ``newest``, oldest first as they arrive: time-ordered inserts fill the ts indexes' pages (loaded
    newest first, index pages split half empty: 127 instead of 88 bytes of index per point)."""
    with psycopg.connect(db_url) as conn, conn.cursor() as cur:
        for start in range(0, n, LOAD_CHUNK):
            buf = io.StringIO()
            for i in range(start, min(n, start + LOAD_CHUNK)):
                ts = (newest - dt.timedelta(milliseconds=100 * (n - 1 - i))).isoformat()
                buf.write(
                    f"{project_id}\tpush:bench\tlatency_ms\t{ts}\t{float(i % 997) + 0.5}\t"
                    f'{{"model_version":"{i % 5}"}}\n'
                )
            with cur.copy(COPY_POINTS) as copy:
                copy.write(buf.getvalue())
            conn.commit()


def insert_points(db_url: str, project_id: int, n: int, *, oldest: dt.datetime, days: int) -> None:
    """n points spread evenly over ``days`` days from ``oldest``, generated in the server (COPY from
    Python would take most of an hour at 100M); the same columns and values as ``copy_points``."""
    step_us = days * 86_400_000_000 // max(n, 1)
    sql = (
        "INSERT INTO telemetry_metricpoint (project_id, source, metric, ts, value, labels) "
        "SELECT %(project)s, 'push:bench', 'latency_ms', "
        "%(oldest)s + g::bigint * %(step)s::bigint * interval '1 microsecond', "
        "(g %% 997) + 0.5, jsonb_build_object('model_version', (g %% 5)::text) "
        "FROM generate_series(%(first)s, %(last)s) g"
    )
    with psycopg.connect(db_url) as conn:
        for start in range(0, n, LOAD_CHUNK):
            last = min(n, start + LOAD_CHUNK) - 1
            params = {"project": project_id, "oldest": oldest, "step": step_us, "first": start, "last": last}
            conn.execute(sql, params)
            conn.commit()
        conn.execute("ANALYZE telemetry_metricpoint")
        conn.commit()


def partition_bytes(db_url: str) -> tuple[int, int, int]:
    """(total, heap with TOAST and maps, indexes) summed over every partition of the points table."""
    sql = (
        "SELECT sum(pg_total_relation_size(i.inhrelid)), sum(pg_table_size(i.inhrelid)), "
        "sum(pg_indexes_size(i.inhrelid)) FROM pg_inherits i "
        "WHERE i.inhparent = 'telemetry_metricpoint'::regclass"
    )
    with psycopg.connect(db_url) as conn:
        total, heap, indexes = conn.execute(sql).fetchone()
    return int(total), int(heap), int(indexes)


def value_index_bytes(db_url: str) -> tuple[int, int]:
    """(bytes, points) of the partitions that have the value index (the days that are over): its
    size per point it indexes."""
    sql = (
        "SELECT c.relname, pg_relation_size(to_regclass(c.relname || '_value')) FROM pg_inherits i "
        "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'telemetry_metricpoint'::regclass "
        "AND to_regclass(c.relname || '_value') IS NOT NULL"
    )
    with psycopg.connect(db_url) as conn:
        indexed = conn.execute(sql).fetchall()
        points = sum(conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] for name, _ in indexed)  # noqa: S608 -- partition names from the catalog
    return sum(size for _, size in indexed), points


def checkpoint(db_url: str) -> None:
    """Write out what the load left dirty before a timed step: days past retention were written to
    disk long ago, and a checkpointer still flushing the load would slow the step's commits."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("CHECKPOINT")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, default=100_000_000, help="N points in the 30 days dropped")
    parser.add_argument(
        "--size-points", type=int, default=1_000_000, help="points loaded for bytes per point"
    )
    parser.add_argument(
        "--delete-points", type=int, default=1_000_000, help="points of the bulk DELETE baseline"
    )
    args = parser.parse_args()
    if min(args.points, args.size_points, args.delete_points) < 1000:
        parser.error("every count must be at least 1,000")

    db_name = f"readiness_bench_storage_{os.getpid()}"
    db_url = bench_database(db_name)
    os.environ.update(
        DATABASE_URL=db_url,
        DJANGO_SETTINGS_MODULE="readiness.settings",
        DJANGO_DEBUG="false",
        LOG_LEVEL="WARNING",
        READINESS_RAW_RETENTION_DAYS=str(RAW_RETENTION_DAYS),
    )
    try:
        manage(dict(os.environ), "migrate", "--no-input", "-v0")
        run(args, db_url)
    finally:
        from django.db import connection

        connection.close()
        drop_database(db_name)
    return 0


def run(args: argparse.Namespace, db_url: str) -> None:
    import django

    django.setup()
    from django.db import connection
    from django.utils import timezone

    from readiness.projects.models import Project, Team
    from readiness.telemetry.partitions import partitions_ensure, partitions_value_indexed
    from readiness.telemetry.retention import retention_apply

    team = Team.objects.create(slug="bench", name="Bench")
    project = Project.objects.create(slug="bench", name="Bench", team=team, stage="pilot")
    now = timezone.now()
    today = now.date()
    print(f"PostgreSQL {connection.pg_version // 10000}, machine shared with other work: ratios only compare")

    # 1. Bytes per raw point.
    partitions_ensure(start=today - dt.timedelta(days=7), end=today)
    copy_points(db_url, project.pk, args.size_points, newest=now)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE telemetry_metricpoint")
    n = args.size_points
    total, heap, indexes = partition_bytes(db_url)
    print(
        f"bytes per raw point ({n:,} points, COPY): {total / n:.1f} "
        f"(table {heap / n:.1f}, indexes {indexes / n:.1f}; {total / 2**20:.1f} MiB)"
    )
    # The days that are over get the selection's value index from the daily job (today's never does).
    partitions_value_indexed(now=now)
    value_bytes, indexed = value_index_bytes(db_url)
    print(
        f"  + the value index of the days that are over: {value_bytes / max(indexed, 1):.1f} bytes per "
        f"point it indexes ({indexed:,} points before today)"
    )
    # Rollup rows: bytes per row are measured here the same way once the rollup table exists
    # (issue 14 item 1): load a day of rollups, pg_total_relation_size / rows.
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE telemetry_metricpoint")

    # 2. The retention job dropping 30 days of N points, and 3. the bulk DELETE baseline at a smaller N.
    oldest_day = today - dt.timedelta(days=RAW_RETENTION_DAYS + 1 + DROPPED_DAYS)
    oldest = dt.datetime.combine(oldest_day, dt.time.min, tzinfo=dt.UTC)
    last_day = oldest_day + dt.timedelta(days=DROPPED_DAYS - 1)

    def drop(points: int) -> float:
        partitions_ensure(start=oldest_day, end=last_day)
        insert_points(db_url, project.pk, points, oldest=oldest, days=DROPPED_DAYS)
        checkpoint(db_url)
        started = time.perf_counter()
        result = retention_apply(now=now)
        elapsed = time.perf_counter() - started
        assert len(result.partitions_dropped) == DROPPED_DAYS, result.summary()
        return elapsed

    def bulk_delete(points: int) -> float:
        partitions_ensure(start=oldest_day, end=last_day)
        insert_points(db_url, project.pk, points, oldest=oldest, days=DROPPED_DAYS)
        before = oldest + dt.timedelta(days=DROPPED_DAYS)
        checkpoint(db_url)
        with psycopg.connect(db_url) as conn:
            started = time.perf_counter()
            deleted = conn.execute("DELETE FROM telemetry_metricpoint WHERE ts < %s", [before]).rowcount
            conn.commit()
            elapsed = time.perf_counter() - started
        assert deleted == points, (deleted, points)
        retention_apply(now=now)  # the emptied partitions go before the next measurement
        return elapsed

    small = args.delete_points
    drop_small = drop(small)
    delete_small = bulk_delete(small)
    drop_n = drop(args.points)
    projected = delete_small * args.points / small
    print(f"retention job, 30 days of {small:,} points: {drop_small * 1000:.0f} ms (30 partitions dropped)")
    print(f"bulk DELETE of the same {small:,} points (baseline): {delete_small * 1000:.0f} ms")
    print(f"retention job, 30 days of {args.points:,} points: {drop_n * 1000:.0f} ms")
    print(
        f"bulk DELETE projected to {args.points:,} points: {projected:.1f} s "
        f"= {projected / drop_n:.0f}x the partition drop (and it leaves dead rows for vacuum)"
    )


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
