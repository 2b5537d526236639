"""Prometheus as a pull source: which range a run asks for (``pull_window``), and the asking
(``query_range``, Prometheus' HTTP API ``/api/v1/query_range``).

Prometheus evaluates a range query at ``start``, ``start + step``, ``start + 2 step``, ... up to ``end``:
the timestamps of the answer are set by ``start``. So every window starts on the grid of whole multiples
of the step since the epoch, and the same query always yields points at the same timestamps, whichever
run asked: a run starts one step after the last point stored, and never asks for a timestamp twice.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx

from readiness.telemetry.sources.exchange import SourceError, fetch

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# An outage is caught up to this far back (PRODUCT.md §8); older gaps stay gaps.
MAX_CATCH_UP = timedelta(hours=24)
# A scrape's samples carry the time the scrape started and reach the TSDB when it ends, up to the scrape
# timeout later (10 s by default). A timestamp newer than that may still gain samples, and a point is
# stored once: so a window ends this long before now, on a timestamp whose inputs are all in.
SETTLE = timedelta(seconds=10)


class PrometheusError(SourceError):
    """Prometheus could not answer the query (unreachable, timed out, refused it, answered nonsense)."""


@dataclass(frozen=True)
class Sample:
    ts: datetime
    value: float


@dataclass(frozen=True)
class Series:
    labels: Mapping[str, str]  # the series' labels without __name__
    samples: tuple[Sample, ...]  # oldest first, finite values only


@dataclass(frozen=True)
class QueryWindow:
    start: datetime
    end: datetime
    step: int  # seconds


def pull_window(
    *, last_point_at: datetime | None, now: datetime, interval: int, settle: timedelta = SETTLE
) -> QueryWindow | None:
    """The range a run asks for: from one step after ``last_point_at`` (the newest point stored for the
    query; on the first run, None: the last ``interval``) to now less ``settle``, at most 24 h back,
    step = ``interval``, every timestamp on the step's grid. None when no new timestamp is due."""
    if interval <= 0:
        raise ValueError(f"interval must be a positive number of seconds, not {interval}")
    _require_aware(now=now, last_point_at=last_point_at)
    step = timedelta(seconds=interval)
    end = _grid_floor(now - settle, step)
    after = end - step if last_point_at is None else last_point_at
    start = max(_grid_floor(after, step) + step, _grid_floor(now - MAX_CATCH_UP, step) + step)
    if start > end:
        return None
    return QueryWindow(start=start, end=end, step=interval)


def query_range(
    client: httpx.Client,
    *,
    url: str,
    query: str,
    start: datetime,
    end: datetime,
    step: int,
    headers: Mapping[str, str] | None = None,
) -> list[Series]:
    """The series ``query`` gives from ``start`` to ``end`` (both included) every ``step`` seconds. NaN
    and ±Inf samples (a 0/0 error rate, a quantile of no traffic) are left out, and a series left with
    no sample with them. Every failure is a ``PrometheusError`` with a short message."""
    if not query.strip():
        raise ValueError("query is empty")
    if step <= 0:
        raise ValueError(f"step must be a positive number of seconds, not {step}")
    _require_aware(start=start, end=end)
    if end < start:
        raise ValueError("end is before start")
    answer = fetch(
        client,
        f"{url.rstrip('/')}/api/v1/query_range",
        params={"query": query, "start": _unix(start), "end": _unix(end), "step": str(step)},
        headers=headers or {},
        error=PrometheusError,
    )
    try:
        document = answer.json()
    except ValueError:
        document = None
    # Prometheus explains a refused query in JSON whatever the status (400 bad_data, 422 execution,
    # 503 timeout): its own words are the most useful message.
    if isinstance(document, dict) and document.get("status") == "error":
        raise PrometheusError(f"query failed ({document.get('errorType', 'error')}): {document.get('error')}")
    if not answer.ok:
        raise PrometheusError(f"HTTP {answer.status} {answer.reason}".strip())
    if not isinstance(document, dict):
        raise PrometheusError("the answer is not JSON: is the URL a Prometheus server?")
    return _series(document)


def _series(document: dict[str, object]) -> list[Series]:
    data = document.get("data")
    if document.get("status") != "success" or not isinstance(data, dict):
        raise PrometheusError("unexpected answer: no query result in it")
    if data.get("resultType") != "matrix":
        raise PrometheusError(f"unexpected answer: result type {data.get('resultType')!r}, not a range")
    series = []
    try:
        for item in data["result"]:
            labels = {str(name): str(value) for name, value in item["metric"].items() if name != "__name__"}
            samples = []
            # Native histogram samples ("histograms") have no single value and are not read.
            for ts, text in item.get("values", ()):
                value = float(text)
                if math.isfinite(value):
                    samples.append(
                        Sample(ts=EPOCH + timedelta(milliseconds=round(float(ts) * 1000)), value=value)
                    )
            if samples:
                series.append(Series(labels=labels, samples=tuple(samples)))
    except (KeyError, TypeError, ValueError, AttributeError):
        raise PrometheusError("unexpected answer: malformed series") from None
    return series


def _unix(moment: datetime) -> str:
    # Whole milliseconds, as Prometheus keeps them, written exactly (no float rounding on the way).
    ms = (moment - EPOCH) // timedelta(milliseconds=1)
    return f"{ms // 1000}.{ms % 1000:03d}"


def _grid_floor(moment: datetime, step: timedelta) -> datetime:
    return EPOCH + ((moment - EPOCH) // step) * step


def _require_aware(**moments: datetime | None) -> None:
    for name, moment in moments.items():
        if moment is not None and moment.utcoffset() is None:
            raise ValueError(f"{name} must be an aware datetime (with a time zone)")
