"""The WHERE of a queryset, compiled by the ORM, for a query written by hand over the queryset's table.

Where a query is written out in SQL (a window part's summary, a percentile selection's scans), the
ORM still compiles the rows' conditions (labels, source kinds, the window), so the hand-written part
stays a few column names and bound parameters, and compiling one WHERE costs a fraction of building
and compiling a queryset per part.
"""

from __future__ import annotations

from django.db import connection
from django.db.models import Model, QuerySet


def where_sql(rows: QuerySet[Model]) -> tuple[str, list[object]]:
    """The WHERE of ``rows`` (without the keyword) and its parameters. ``rows`` must filter on its own
    table's columns only: a condition through a join would need the join the hand-written FROM lacks
    (a filter on ``project_id`` leaves the project's join in the query, unreferenced, which is fine)."""
    joined = [alias for alias, references in rows.query.alias_refcount.items() if references]
    assert joined == [rows.model._meta.db_table], joined
    compiler = rows.query.get_compiler(connection=connection)
    sql, params = compiler.compile(rows.query.where)
    return sql, list(params)
