"""Whether PostgreSQL can read a query through an index: its plan with table scans off."""

from __future__ import annotations

from django.db import connection


def plan_without_table_scans(sql: str) -> str:
    """``EXPLAIN`` of ``sql`` with sequential and bitmap scans off. A test's few rows make a table scan
    the cheapest plan; with it off, an index in the plan is one the planner can use for the query (a
    partial index only when it proves the query's bounds lie inside the index's)."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute(f"EXPLAIN {sql}")
        plan = "\n".join(line for (line,) in cursor.fetchall())
        cursor.execute("RESET enable_seqscan")
        cursor.execute("RESET enable_bitmapscan")
    return plan
