"""Provenance (PRODUCT.md §8): every point and batch gains its source; existing ones were pushed by an
unknown token, ``push:legacy``.

PostgreSQL (11 and later) adds a column with a constant default without rewriting the table, so this
is a catalogue change however many points exist; the default is dropped right after, so new rows must
say where they came from.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("telemetry", "0004_ingestbatch_failed_state")]

    operations = [
        migrations.AddField(
            model_name="metricpoint",
            name="source",
            field=models.CharField(default="push:legacy", max_length=120),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="ingestbatch",
            name="source",
            field=models.CharField(default="push:legacy", max_length=120),
            preserve_default=False,
        ),
    ]
