"""``readiness_retention [--dry-run]``: the daily retention job, now (PRODUCT.md §9)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from readiness.telemetry.retention import retention_apply


class Command(BaseCommand):
    help = (
        "Remove raw points older than READINESS_RAW_RETENTION_DAYS now, as the daily job does "
        "(on PostgreSQL: drop whole daily partitions). --dry-run prints what it would remove and "
        "removes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="print what would be removed; remove nothing"
        )

    def handle(self, *args: Any, dry_run: bool, **options: Any) -> None:
        result = retention_apply(now=timezone.now(), dry_run=dry_run)
        self.stdout.write(result.summary())
