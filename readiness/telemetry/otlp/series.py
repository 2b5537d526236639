"""Where the previous data point of each cumulative histogram series is remembered.

The mapping reads states with ``get`` while it walks an export and writes them with ``put`` only once
the whole export is accepted, so a refused export (a reserved name, too many points) changes nothing.
A memory kept in the database should be read and written inside the transaction that stores the
export's points, with the rows locked (``select_for_update``): otherwise a failure between the two,
or two exports of one series at once, would lose or count an interval twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Protocol

from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope, KeyValue

from readiness.telemetry.otlp.histograms import HistogramState


class SeriesMemory(Protocol):
    """The previous state of each cumulative series, by ``series_key`` (unique within one project)."""

    def get(self, key: str) -> HistogramState | None: ...

    def put(self, key: str, state: HistogramState) -> None: ...


class InMemorySeriesMemory:
    """A dict behind the protocol: for tests, and for one process that keeps no history."""

    def __init__(self) -> None:
        self.states: dict[str, HistogramState] = {}

    def get(self, key: str) -> HistogramState | None:
        return self.states.get(key)

    def put(self, key: str, state: HistogramState) -> None:
        self.states[key] = state


def series_key(
    *,
    resource_attributes: Iterable[KeyValue],
    scope: InstrumentationScope,
    metric: str,
    kind: str,
    attributes: Iterable[KeyValue],
) -> str:
    """A fixed-length digest naming one series: resource, scope, metric (name and kind), attributes.

    The whole resource, not only ``service.name``, as the Collector's ``cumulativetodelta`` keys its
    series: replicas of one service differ only in ``service.instance.id``, and two cumulative
    series mixed under one key would look like a reset at every export. Attributes are compared
    as sent (an int 200 and a string "200" are two series), sorted so their order does not matter.
    """
    digest = hashlib.sha256()
    parts: list[bytes] = [b"resource", *_sorted(resource_attributes), b"scope"]
    parts += [scope.name.encode(), scope.version.encode(), b"metric", metric.encode(), kind.encode()]
    parts += [b"attributes", *_sorted(attributes)]
    for part in parts:
        # Length-prefixed, so no two different lists of parts hash the same bytes.
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()


def _sorted(attributes: Iterable[KeyValue]) -> list[bytes]:
    return sorted(pair.SerializeToString(deterministic=True) for pair in attributes)
