from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import time_machine
from django.db import connection

from readiness.projects.models import Project
from tests.factories import ProjectFactory

# The job's tests run at this instant: the clock never moves, and partitions made by the real migrate
# (today's week) are simply old days there.
NOW = datetime(2031, 3, 15, 12, 0, tzinfo=UTC)


@pytest.fixture
def frozen() -> Iterator[None]:
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def project() -> Project:
    return ProjectFactory()


@pytest.fixture(autouse=True)
def points_checked_at_once(db: None) -> None:
    """The job drops partitions holding points committed long before it runs. A test writes them in
    its own still-open transaction, where their deferred foreign-key checks would still be pending,
    and PostgreSQL refuses to drop a table with pending trigger events: check them at once instead."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
