"""The rollups lose their index on ``project_id`` alone, as the raw points did (0011): ``metricrollup_window``
(project, metric, resolution, start) answers everything it did, a project's deletion included. The fold
writes a minute row and an hour row per point of a series with one point an hour (most projects of a
portfolio): one index fewer to maintain per rollup row written, and less to store.

The state change is ``db_index=False``; the database change is a plain DROP INDEX on both databases,
rather than the table rebuild Django's SQLite schema editor would do for an altered field."""

import django.db.models.deletion
from django.db import migrations, models

INDEX = "telemetry_metricrollup_project_id_bfa1365c"


def drop(apps, schema_editor):  # noqa: ARG001 -- the migration signature
    schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


def create(apps, schema_editor):  # noqa: ARG001
    schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {INDEX} ON telemetry_metricrollup (project_id)")


class Migration(migrations.Migration):
    dependencies = [
        ("telemetry", "0011_metricpoint_project_index_dropped"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="metricrollup",
                    name="project",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="projects.project",
                    ),
                ),
            ],
            database_operations=[migrations.RunPython(drop, create)],
        ),
    ]
