"""An index in the portfolio's order of projects (by name regardless of case, code point order, then
slug), so the matrix's page and the first projects by name are read in order from it: at 10,000
projects sorting them all for fifty rows took 18-25 ms, reading the index 1 ms (EXPLAIN ANALYZE,
issue 14 item 7).

PostgreSQL only, and outside the models' state: the order is ``COLLATE "C"`` there
(``readiness.dashboard.portfolio.figures._sortable``), which SQLite has no name for (its default
order is already by code point, and its small portfolios need no index)."""

from __future__ import annotations

from typing import Any

from django.db import migrations

INDEX = "project_name_order"


def create_index(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f'CREATE INDEX IF NOT EXISTS {INDEX} ON projects_project ((LOWER(name) COLLATE "C"), slug)'
        )


def drop_index(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("projects", "0004_project_evaluated_at")]

    operations = [migrations.RunPython(create_index, drop_index)]
