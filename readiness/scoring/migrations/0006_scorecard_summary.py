from typing import Any

from django.db import migrations, models

from readiness.scoring.models import scorecard_summary

BATCH = 500


def fill_summaries(apps: Any, schema_editor: Any) -> None:
    """Every stored scorecard gets its summary, in batches by id so a long history is never held in
    memory at once (the payload is the large part of a row)."""
    scorecards = apps.get_model("scoring", "Scorecard")
    last = 0
    while True:
        batch = list(scorecards.objects.filter(id__gt=last).order_by("id").only("id", "payload")[:BATCH])
        if not batch:
            return
        for scorecard in batch:
            scorecard.summary = scorecard_summary(scorecard.payload)
        scorecards.objects.bulk_update(batch, ["summary"])
        last = batch[-1].id


class Migration(migrations.Migration):
    dependencies = [
        ("scoring", "0005_criterion_sources"),
    ]

    operations = [
        migrations.AddField(
            model_name="scorecard",
            name="summary",
            field=models.JSONField(default=dict, editable=False),
        ),
        migrations.RunPython(fill_summaries, migrations.RunPython.noop),
    ]
