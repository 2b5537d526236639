"""OTLP's points become the very COPY rows a JSON push of the same points makes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from readiness.telemetry.push import encode_points, encode_valid_points
from readiness.telemetry.push_rules import Problems

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def test_valid_points_encode_to_the_rows_of_the_same_json_push() -> None:
    points = [
        ("latency_ms", NOW - timedelta(microseconds=1), 182.5, {"model_version": "7", "service": "a\\b"}),
        ("latency_ms", NOW - timedelta(microseconds=1), 1e-300, {"service": "a\\b", "model_version": "7"}),
        ("model.accuracy", NOW, 0.931, {}),
        ("predictions", NOW, 3.0, {"quote": 'say "hi"\ttab'}),
    ]
    pushed = [
        (index, {"metric": metric, "ts": ts.isoformat(), "value": value, "labels": labels})
        for index, (metric, ts, value, labels) in enumerate(points)
    ]

    valid = encode_valid_points(points)

    assert valid == encode_points(pushed, Problems(), now=NOW)
    assert valid.count == 4
