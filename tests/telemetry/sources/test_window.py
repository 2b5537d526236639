"""pull_window: which range a Prometheus pull asks for. Pure: ``now`` is given, never read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from readiness.telemetry.sources.prometheus import MAX_CATCH_UP, SETTLE, QueryWindow, pull_window

# 10:00:00 is on the grid of every interval that divides an hour; now is 37.5 s past it.
TEN = datetime(2026, 11, 22, 10, 0, 0, tzinfo=UTC)
NOW = TEN + SETTLE + timedelta(seconds=37.5)


def ticks(window: QueryWindow) -> list[datetime]:
    """The timestamps Prometheus evaluates a range query at: start, start + step, ... up to end."""
    step = timedelta(seconds=window.step)
    return [window.start + n * step for n in range(int((window.end - window.start) / step) + 1)]


def test_the_first_run_asks_for_the_last_interval_only() -> None:
    window = pull_window(last_point_at=None, now=NOW, interval=60)

    assert window == QueryWindow(start=TEN, end=TEN, step=60)


def test_a_run_starts_one_step_after_the_last_point_stored() -> None:
    window = pull_window(last_point_at=TEN - timedelta(minutes=3), now=NOW, interval=60)

    assert window is not None
    assert ticks(window) == [TEN - timedelta(minutes=2), TEN - timedelta(minutes=1), TEN]


def test_the_window_ends_settle_before_now_on_the_grid() -> None:
    just_before = pull_window(
        last_point_at=TEN - timedelta(minutes=1), now=TEN + SETTLE - timedelta(seconds=1), interval=60
    )
    on_time = pull_window(last_point_at=TEN - timedelta(minutes=1), now=TEN + SETTLE, interval=60)

    assert just_before is None
    assert on_time == QueryWindow(start=TEN, end=TEN, step=60)


def test_repeated_runs_ask_each_timestamp_once_and_leave_no_gap() -> None:
    """Runs at irregular moments (a late worker, a skipped beat): the timestamps asked, run after run,
    are the grid without a repeat or a hole, each run starting after the last point the one before got."""
    asked: list[datetime] = []
    last = None
    for offset in (0, 61, 119, 122, 300, 301, 659.9, 660):
        window = pull_window(last_point_at=last, now=NOW + timedelta(seconds=offset), interval=60)
        if window is None:
            continue
        asked += ticks(window)
        last = asked[-1]

    assert asked == [TEN + timedelta(minutes=n) for n in range(12)]


def test_an_outage_is_caught_up_at_most_24_hours_back() -> None:
    window = pull_window(last_point_at=TEN - timedelta(days=3), now=NOW, interval=60)

    assert window is not None
    assert window.start == TEN - MAX_CATCH_UP + timedelta(minutes=1)
    assert window.end == TEN
    assert len(ticks(window)) == 24 * 60


def test_a_last_point_off_the_grid_is_followed_by_the_next_grid_timestamp() -> None:
    # The interval changed from 60 to 300 s: the next point is on the new grid, after the last one.
    window = pull_window(last_point_at=TEN - timedelta(minutes=7), now=NOW, interval=300)

    assert window == QueryWindow(start=TEN - timedelta(minutes=5), end=TEN, step=300)


def test_a_last_point_in_the_future_asks_nothing() -> None:
    assert pull_window(last_point_at=NOW + timedelta(minutes=5), now=NOW, interval=60) is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"last_point_at": None, "now": NOW.replace(tzinfo=None), "interval": 60},
            "now must be an aware datetime",
        ),
        (
            {"last_point_at": TEN.replace(tzinfo=None), "now": NOW, "interval": 60},
            "last_point_at must be an aware datetime",
        ),
        ({"last_point_at": None, "now": NOW, "interval": 0}, "interval must be a positive number"),
    ],
    ids=["naive-now", "naive-last-point", "zero-interval"],
)
def test_bad_arguments_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        pull_window(**kwargs)  # type: ignore[arg-type]
