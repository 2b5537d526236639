"""An index in the funnel's order of entry (per stage, the earliest entry first, ties by the portfolio's
name order), holding each project's id and name too, so the funnel's named places (the longest stuck
and the middle entry per stage) are ranked from the index alone: at 10,000 projects ranking them read
and sorted every funnel project with its team (18-20 ms); ranked from this index, 4 ms (EXPLAIN
ANALYZE, issue 14 item 7). Its first column also serves the retired projects' lookups (the tallies
less what retired projects hold).

PostgreSQL only, outside the models' state, like ``project_name_order`` (0005): the name is ordered
``COLLATE "C"``, which SQLite has no name for."""

from __future__ import annotations

from typing import Any

from django.db import migrations

INDEX = "project_entry_order"


def create_index(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        # id and name INCLUDEd: the ranking reads the name (for LOWER) and returns the id, so with
        # both in the index it is an index-only scan.
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {INDEX} ON projects_project "
            '(stage, stage_changed_at, (LOWER(name) COLLATE "C"), slug) INCLUDE (id, name)'
        )


def drop_index(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("projects", "0005_project_name_order_index")]

    operations = [migrations.RunPython(create_index, drop_index)]
