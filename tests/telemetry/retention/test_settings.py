"""READINESS_RAW_RETENTION_DAYS and READINESS_ROLLUP_RETENTION_DAYS are checked at start: raw at least
a day, rollups at least as long as raw points; anything else stops the process naming the variable."""

from __future__ import annotations

import pytest

from tests.ops.test_settings import python_with

PRINT = (
    "import django; django.setup(); from django.conf import settings; "
    "print(settings.READINESS_RAW_RETENTION_DAYS, settings.READINESS_ROLLUP_RETENTION_DAYS)"
)


def test_defaults_are_35_and_400_days() -> None:
    result = python_with(PRINT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["35", "400"]


def test_equal_retentions_are_accepted() -> None:
    result = python_with(PRINT, READINESS_RAW_RETENTION_DAYS="90", READINESS_ROLLUP_RETENTION_DAYS="90")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["90", "90"]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"READINESS_RAW_RETENTION_DAYS": "0"}, "READINESS_RAW_RETENTION_DAYS: must be at least 1, got 0"),
        (
            {"READINESS_RAW_RETENTION_DAYS": "a month"},
            "READINESS_RAW_RETENTION_DAYS: expected a whole number",
        ),
        (
            {"READINESS_RAW_RETENTION_DAYS": "35", "READINESS_ROLLUP_RETENTION_DAYS": "30"},
            "READINESS_ROLLUP_RETENTION_DAYS: must be at least READINESS_RAW_RETENTION_DAYS (35 days), "
            "got 30",
        ),
        ({"READINESS_RAW_RETENTION_DAYS": "500"}, "READINESS_ROLLUP_RETENTION_DAYS: must be at least"),
    ],
)
def test_bad_retention_stops_the_start_naming_the_variable(env: dict[str, str], message: str) -> None:
    result = python_with(PRINT, **env)
    assert result.returncode != 0
    assert message in result.stderr
