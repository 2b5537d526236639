"""The memory of cumulative series: its keys, and a state that survives a round trip through JSON."""

from __future__ import annotations

import json

from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.metrics.v1.metrics_pb2 import AGGREGATION_TEMPORALITY_CUMULATIVE

from readiness.telemetry.otlp import HistogramState, InMemorySeriesMemory, map_export, series_key
from readiness.telemetry.otlp.histograms import ExplicitCounts, ExponentialCounts
from tests.telemetry.otlp.exports import NOW, NOW_NANOS, attributes, explicit_point, export, histogram

SCOPE = InstrumentationScope(name="fraud.scoring", version="1.4.0")


def key(**changes: object) -> str:
    parts: dict[str, object] = {
        "resource_attributes": attributes({"service.name": "fraud-api", "service.instance.id": "pod-a"}),
        "scope": SCOPE,
        "metric": "latency_ms",
        "kind": "histogram",
        "attributes": attributes({"route": "/score", "code": 200}),
    }
    return series_key(**{**parts, **changes})


def test_a_series_key_ignores_the_order_of_attributes() -> None:
    assert key(attributes=attributes({"code": 200, "route": "/score"})) == key()
    assert len(key()) == 64


def test_every_part_of_a_series_names_a_different_key() -> None:
    others = [
        key(resource_attributes=attributes({"service.name": "fraud-api", "service.instance.id": "pod-b"})),
        key(scope=InstrumentationScope(name="fraud.scoring", version="1.5.0")),
        key(metric="latency_seconds"),
        key(kind="exponential_histogram"),
        key(attributes=attributes({"route": "/score", "code": "200"})),  # a string is not the int
        key(attributes=attributes({"route": "/score"})),
    ]

    assert len({key(), *others}) == len(others) + 1


def test_a_state_survives_a_round_trip_through_json() -> None:
    states = [
        HistogramState(1, 2, 7, 40.5, ExplicitCounts((0.0, 10.0), (1, 4, 2))),
        HistogramState(1, 2, 3, None, ExplicitCounts((), ())),
        HistogramState(0, 5, 9, 1.5, ExponentialCounts(3, 1e-9, 2, -4, (1, 0, 3), 2, (3,))),
    ]

    for state in states:
        assert HistogramState.from_dict(json.loads(json.dumps(state.as_dict()))) == state


class JsonSeriesMemory:
    """A memory that keeps states as JSON text, as a database column would."""

    def __init__(self) -> None:
        self.rows: dict[str, str] = {}

    def get(self, key: str) -> HistogramState | None:
        row = self.rows.get(key)
        return None if row is None else HistogramState.from_dict(json.loads(row))

    def put(self, key: str, state: HistogramState) -> None:
        self.rows[key] = json.dumps(state.as_dict())


def test_a_memory_that_stores_json_maps_cumulative_series_like_the_one_in_memory() -> None:
    start = NOW_NANOS - 300 * 10**9
    exports = [
        export(
            histogram(
                "latency_ms",
                explicit_point(
                    (10.0, 20.0), counts, start=start, at=NOW_NANOS - (3 - i) * 10**9, total=total
                ),
                temporality=AGGREGATION_TEMPORALITY_CUMULATIVE,
            )
        )
        for i, (counts, total) in enumerate([((1, 1, 0), 20.0), ((2, 4, 1), 90.0), ((2, 4, 1), 90.0)])
    ]
    in_memory, as_json = InMemorySeriesMemory(), JsonSeriesMemory()

    for request in exports:
        expected = map_export(request=request, memory=in_memory, now=NOW)
        assert map_export(request=request, memory=as_json, now=NOW) == expected

    assert set(as_json.rows) == set(in_memory.states)
