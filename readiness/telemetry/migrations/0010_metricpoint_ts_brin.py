"""A BRIN index on the raw points' ts, on PostgreSQL: the fold reads "every point with ts in [low, high)"
across projects, which the (project, metric, ts) index cannot answer without a full scan. Points arrive
nearly in ts order, so a BRIN index (a few pages for millions of rows, next to nothing per insert)
narrows the scan to the blocks of that span. SQLite, the embedded default at small scale, scans."""

from django.db import migrations


def create(apps, schema_editor):  # noqa: ARG001 -- the migration signature
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "CREATE INDEX IF NOT EXISTS metricpoint_ts_brin ON telemetry_metricpoint USING brin (ts)"
        )


def drop(apps, schema_editor):  # noqa: ARG001
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS metricpoint_ts_brin")


class Migration(migrations.Migration):
    dependencies = [("telemetry", "0009_rollups")]

    operations = [migrations.RunPython(create, drop)]
