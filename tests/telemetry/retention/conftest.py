from __future__ import annotations

import pytest
from django.db import connection


@pytest.fixture(autouse=True)
def points_checked_at_once(db: None) -> None:
    """The job drops partitions holding points committed long before it runs. A test writes them in
    its own still-open transaction, where their deferred foreign-key checks would still be pending,
    and PostgreSQL refuses to drop a table with pending trigger events: check them at once instead."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
