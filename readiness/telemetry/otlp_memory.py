"""The OTLP receiver's series memory in the database (``OtlpSeries``), behind ``otlp.SeriesMemory``.

Used inside the transaction that stores an export's batch: ``get`` takes the series' row lock
(``SELECT ... FOR UPDATE``), so a second export of the same series, in any gunicorn process, waits
until the first has committed its points and its new state together, then differences from that
state. A series seen for the first time gets its row first (``ON CONFLICT DO NOTHING``), so there is
a row to lock even then: two first exports of one series cannot both map it from nothing.
On SQLite (the embedded default) one writer at a time gives the same order without row locks.
"""

from __future__ import annotations

from datetime import datetime

from readiness.telemetry.models import OtlpSeries
from readiness.telemetry.otlp import HistogramState


class DatabaseSeriesMemory:
    """The series memory of one project; call only inside ``transaction.atomic()``."""

    def __init__(self, *, project_id: int, now: datetime) -> None:
        self.project_id = project_id
        self.now = now

    def get(self, key: str) -> HistogramState | None:
        OtlpSeries.objects.bulk_create(
            [OtlpSeries(project_id=self.project_id, key=key, state=None, updated_at=self.now)],
            ignore_conflicts=True,
        )
        state = (
            OtlpSeries.objects.select_for_update()
            .filter(project_id=self.project_id, key=key)
            .values_list("state", flat=True)
            .get()
        )
        return None if state is None else HistogramState.from_dict(state)

    def put(self, key: str, state: HistogramState) -> None:
        # The row exists: map_export only puts a series it asked ``get`` for in this transaction.
        OtlpSeries.objects.filter(project_id=self.project_id, key=key).update(
            state=state.as_dict(), updated_at=self.now
        )
