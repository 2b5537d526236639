"""On PostgreSQL, the sealed partitions of the raw points (the days that are over, and DEFAULT) get the
value index an exact percentile's selection reads, and today's hours that are over their partial one
(``partitions.partitions_value_indexed``, which the hourly sealing job runs from then on). Built
``CONCURRENTLY``, one partition after another: pushes go on while a database holding months of points
migrates. SQLite has no index for it: the embedded default's windows are small enough to read whole."""

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps
from django.utils import timezone

from readiness.telemetry.partitions import partitions_value_indexed, value_indexes


def build(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        partitions_value_indexed(now=timezone.now())


def drop(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        for name in value_indexes():
            cursor.execute(f'DROP INDEX IF EXISTS "{name}"')


class Migration(migrations.Migration):
    # CREATE INDEX CONCURRENTLY cannot run inside a transaction.
    atomic = False

    dependencies = [("telemetry", "0012_metricrollup_project_index_dropped")]

    operations = [migrations.RunPython(build, drop)]
