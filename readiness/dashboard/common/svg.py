"""Geometry of the server-rendered SVG charts (the report and the portfolio's trend).

Server-side SVG rather than plotly here: a report must print exactly as it looks, with no script, and
a small chart must read without JavaScript. These functions return numbers and short labels only;
the templates draw them, so every piece of text goes through Django's autoescaping.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from readiness.dashboard.common.display import format_number


@dataclass(frozen=True)
class Tick:
    position: float
    label: str


@dataclass(frozen=True)
class Box:
    """The plotting area inside the chart: margins keep room for the axis labels."""

    left: float
    top: float
    right: float
    bottom: float

    @property
    def width(self) -> float:
        return self.right - self.left

    @property
    def height(self) -> float:
        return self.bottom - self.top


@dataclass(frozen=True)
class Guide:
    """A horizontal line across the plot: a threshold or a warn threshold."""

    y: float
    label: str
    kind: str  # "threshold" | "warn"


@dataclass(frozen=True)
class LineChart:
    width: int
    height: int
    box: Box
    points: str  # the polyline's "x,y x,y …"
    markers: list[tuple[float, float]]  # a dot per point when there are few of them
    guides: list[Guide]
    y_ticks: list[Tick]
    x_ticks: list[Tick]


def _scale(value: float, low: float, high: float, start: float, end: float) -> float:
    if high == low:
        return (start + end) / 2
    return start + (value - low) / (high - low) * (end - start)


def _time_ticks(start: datetime, end: datetime, box: Box) -> list[Tick]:
    span = (end - start).total_seconds()
    fmt = "%H:%M" if span <= 2 * 86400 else "%-d %b"
    return [Tick(box.left, f"{start:{fmt}}"), Tick(box.right, f"{end:{fmt}}")]


def line_chart(
    *,
    series: Sequence[tuple[datetime, float]],
    start: datetime,
    end: datetime,
    guides: Sequence[tuple[float, str, str]] = (),
    width: int = 360,
    height: int = 140,
) -> LineChart:
    """A time series over ``start`` … ``end`` with horizontal guides ``(value, label, kind)``. The value
    axis spans the data and every guide, so a threshold far from the data is still on the chart."""
    box = Box(left=48, top=10, right=width - 10, bottom=height - 22)
    values = [value for _, value in series] + [value for value, _, _ in guides]
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    pad = (high - low) * 0.08 or abs(high) * 0.08 or 1.0
    low, high = low - pad, high + pad
    span = (end - start).total_seconds() or 1.0

    def x_of(moment: datetime) -> float:
        return box.left + (moment - start).total_seconds() / span * box.width

    def y_of(value: float) -> float:
        return _scale(value, low, high, box.bottom, box.top)

    coordinates = [(round(x_of(ts), 1), round(y_of(value), 1)) for ts, value in series]
    return LineChart(
        width=width,
        height=height,
        box=box,
        points=" ".join(f"{x},{y}" for x, y in coordinates),
        markers=coordinates if len(coordinates) <= 40 else [],
        guides=[Guide(round(y_of(value), 1), label, kind) for value, label, kind in guides],
        y_ticks=[Tick(round(y_of(value), 1), format_number(value)) for value in (low + pad, high - pad)],
        x_ticks=_time_ticks(start, end, box),
    )


@dataclass(frozen=True)
class Band:
    """A stretch of time with one decision."""

    x: float
    width: float
    decision: str
    since: datetime


@dataclass(frozen=True)
class Timeline:
    width: int
    height: int
    box: Box
    bands: list[Band]
    x_ticks: list[Tick]


def decision_timeline(
    *,
    decisions: Sequence[tuple[datetime, str]],
    start: datetime,
    end: datetime,
    width: int = 720,
    height: int = 46,
) -> Timeline:
    """Bands of constant decision from ``decisions`` (oldest first, each ``(computed_at, decision)``;
    the first may be before ``start``: the decision the window opens with). Time without a
    scorecard yet is left blank."""
    box = Box(left=4, top=4, right=width - 4, bottom=height - 18)
    span = (end - start).total_seconds() or 1.0

    def x_of(moment: datetime) -> float:
        return box.left + max(0.0, min(1.0, (moment - start).total_seconds() / span)) * box.width

    changes: list[tuple[datetime, str]] = []
    for moment, decision in decisions:
        if not changes or changes[-1][1] != decision:
            changes.append((moment, decision))
    bands = []
    for index, (moment, decision) in enumerate(changes):
        until = changes[index + 1][0] if index + 1 < len(changes) else end
        x0, x1 = x_of(moment), x_of(until)
        if x1 > x0 or index == len(changes) - 1:
            bands.append(Band(round(x0, 1), round(max(x1 - x0, 1.0), 1), decision, moment))
    return Timeline(width=width, height=height, box=box, bands=bands, x_ticks=_time_ticks(start, end, box))


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    value_label: str  # "40%", or "—" when there is nothing to measure
    label: str
    label_x: float


@dataclass(frozen=True)
class BarChart:
    width: int
    height: int
    box: Box
    bars: list[Bar]
    y_ticks: list[Tick]


def share_bars(
    *, shares: Sequence[float | None], labels: Sequence[str], width: int = 720, height: int = 180
) -> BarChart:
    """One bar per share (0 to 1, or None for "nothing to measure"), on a fixed 0 to 100% axis: a trend
    whose axis moved with the data would make 48% → 52% look like a landslide."""
    box = Box(left=42, top=20, right=width - 6, bottom=height - 26)
    slot = box.width / max(len(shares), 1)
    bars = []
    for index, (share, label) in enumerate(zip(shares, labels, strict=True)):
        bar_height = (share or 0.0) * box.height
        x = box.left + index * slot + slot * 0.15
        bars.append(
            Bar(
                x=round(x, 1),
                y=round(box.bottom - bar_height, 1),
                width=round(slot * 0.7, 1),
                height=round(bar_height, 1),
                value_label="—" if share is None else f"{round(100 * share)}%",
                label=label,
                label_x=round(x + slot * 0.35, 1),
            )
        )
    y_ticks = [Tick(round(_scale(p, 0, 100, box.bottom, box.top), 1), f"{p}%") for p in (0, 50, 100)]
    return BarChart(width=width, height=height, box=box, bars=bars, y_ticks=y_ticks)
