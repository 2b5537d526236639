"""The raw points lose their index on ``project_id`` alone: ``metricpoint_window`` (project, metric, ts)
answers everything it did (a project's deletion included), and PostgreSQL's planner preferred it for a
long window of one metric, whose rows it then read for every metric of the project and filtered: the
scorecard page's 30-day chart read 170,000 rows for 43,000 (EXPLAIN ANALYZE in docs/benchmarks.md,
"Pages at scale"). One index fewer to maintain per inserted point, too.

The state change is ``db_index=False``; the database change is a plain DROP INDEX on both databases
(on the partitioned table it drops every partition's index with it), rather than the table rebuild
Django's SQLite schema editor would do for an altered field."""

import django.db.models.deletion
from django.db import migrations, models

INDEX = "telemetry_metricpoint_project_id_9614890c"


def drop(apps, schema_editor):  # noqa: ARG001 -- the migration signature
    schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


def create(apps, schema_editor):  # noqa: ARG001
    schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {INDEX} ON telemetry_metricpoint (project_id)")


class Migration(migrations.Migration):
    dependencies = [
        ("telemetry", "0010_metricpoint_ts_brin"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="metricpoint",
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
