"""The raw points get an index on (project, metric, value, ts): an exact percentile of a long window then
reads the points inside a few value ranges (``rollups.selection``) instead of scanning the window.

On PostgreSQL the table is partitioned and may hold months of points while pushes go on, so the index
is built without blocking writes: the partitioned index is made empty (``ON ONLY``), each partition's
own is built ``CONCURRENTLY`` and attached; once all are attached the partitioned index is valid, and
partitions attached later build theirs themselves (``partitions.partition_create``). A build that
failed half-way leaves an invalid index, which a re-run drops and builds again. SQLite builds it plainly.
"""

from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

INDEX = "metricpoint_value"
TABLE = "telemetry_metricpoint"
COLUMNS = "(project_id, metric, value, ts)"
PARTITIONS = """
SELECT child.relname, partition_index.indexrelid::regclass::text, partition_index.indisvalid
FROM pg_inherits
JOIN pg_class child ON child.oid = pg_inherits.inhrelid
LEFT JOIN pg_index partition_index ON partition_index.indexrelid = to_regclass(child.relname || '_value')
WHERE pg_inherits.inhparent = %s::regclass
ORDER BY child.relname
"""


def create(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {INDEX} ON {TABLE} {COLUMNS}")
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(f"CREATE INDEX IF NOT EXISTS {INDEX} ON ONLY {TABLE} {COLUMNS}")
        cursor.execute(PARTITIONS, [TABLE])
        for partition, existing, valid in cursor.fetchall():
            name = f"{partition}_value"
            if existing is not None and not valid:
                cursor.execute(f'DROP INDEX CONCURRENTLY "{name}"')
            cursor.execute(f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{name}" ON "{partition}" {COLUMNS}')
            # Attaching an index already attached (a re-run) does nothing.
            cursor.execute(f'ALTER INDEX {INDEX} ATTACH PARTITION "{name}"')


def drop(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    # On PostgreSQL dropping the partitioned index drops every partition's with it.
    schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    # CREATE INDEX CONCURRENTLY cannot run inside a transaction.
    atomic = False

    dependencies = [("telemetry", "0012_metricrollup_project_index_dropped")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddIndex(
                    model_name="metricpoint",
                    index=models.Index(fields=["project", "metric", "value", "ts"], name=INDEX),
                ),
            ],
            database_operations=[migrations.RunPython(create, drop)],
        ),
    ]
