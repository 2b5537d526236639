"""OTLP names and attributes to the names and labels of a push (PRODUCT.md §3 and §8).

Every function here returns a valid name (or labels) or a ``Rejection`` saying why the data point
cannot be stored; none raises, whatever the input (tests/telemetry/otlp/test_naming.py checks it with
Hypothesis). The push's own patterns decide what is valid: one rule, one implementation.
"""

from __future__ import annotations

import base64
import functools
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

# The reserved names are provenance's rule, one for pushes and OTLP alike; re-exported for ``mapping``.
from readiness.telemetry.provenance import is_reserved as is_reserved
from readiness.telemetry.push_rules import LABEL_KEY_RE, MAX_LABEL_VALUE, MAX_LABELS

SERVICE_LABEL = "service"
SERVICE_NAME = "service.name"
MAX_METRIC_NAME = 100

# Only ASCII letters are lowercased: str.lower() turns some other characters into ASCII ones (the
# Kelvin sign into "k") or into two characters, and every non-ASCII character becomes "_" anyway.
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_OUTSIDE_METRIC = re.compile(r"[^a-z0-9_.:]")
_OUTSIDE_LABEL_KEY = re.compile(r"[^a-z0-9_]")


@dataclass(frozen=True)
class Rejection:
    """Why one data point is not stored (reported in the answer's ``partial_success``)."""

    reason: str


def normalise_metric_name(raw: str) -> str:
    """Lowercase, ``_`` for anything outside ``[a-z0-9_.:]``, ``m`` before a leading non-letter.

    Before any length check, so a reserved name stays recognisable however long it is.
    """
    name = _OUTSIDE_METRIC.sub("_", raw.translate(_ASCII_LOWER))
    if name and not ("a" <= name[0] <= "z"):
        name = "m" + name
    return name


def metric_name(raw: str, *, suffixes: Iterable[str] = ("",)) -> str | Rejection:
    """The push name of an OTLP metric, or why there is none.

    ``suffixes`` are what the metric's points append (``.count``, ``.p99``...): every resulting
    name must fit the push's 100 characters. Beyond them the data point is rejected rather than the
    name cut short, since two long names cut at 100 could become one series.
    """
    if not raw:
        return Rejection("the metric has no name")
    name = normalise_metric_name(raw)
    longest = max(len(suffix) for suffix in suffixes)
    if len(name) + longest > MAX_METRIC_NAME:
        return Rejection(
            f"metric name {name[:40]!r}... is {len(name)} characters; with its suffixes it exceeds "
            f"{MAX_METRIC_NAME}"
        )
    return name


# Exports repeat a handful of attribute keys on every data point: each is normalised once.
@functools.lru_cache(maxsize=4096)
def label_key(raw: str) -> str | Rejection:
    """An attribute key as a label key: lowercase, ``_`` outside ``[a-z0-9_]``, ``key_`` before a digit.

    ``key_`` is the prefix OpenTelemetry's Prometheus compatibility rules give a leading digit, so
    labels read the same as in a Prometheus fed by the same SDK. Keys over 50 characters once
    normalised reject the data point.
    """
    if not raw:
        return Rejection("an attribute has an empty key")
    key = _OUTSIDE_LABEL_KEY.sub("_", raw.translate(_ASCII_LOWER))
    if key[0].isdigit():
        key = "key_" + key
    if LABEL_KEY_RE.fullmatch(key) is None:
        return Rejection(f"attribute {raw[:60]!r} becomes label key {key[:60]!r}: longer than 50 characters")
    return key


def label_value(value: AnyValue) -> str | Rejection:
    """A string attribute as it is; any other kind as its JSON text (bytes in base64, as OTLP JSON)."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        text = value.string_value
    elif kind == "int_value":
        text = str(value.int_value)  # the common kinds without json.dumps, which costs more
    elif kind == "bool_value":
        text = "true" if value.bool_value else "false"
    else:
        try:
            text = json.dumps(_plain(value), ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        except ValueError:
            return Rejection("an attribute holds a NaN or infinite number, which has no JSON text")
    if len(text) > MAX_LABEL_VALUE:
        return Rejection(f"a label value is longer than {MAX_LABEL_VALUE} characters")
    if "\x00" in text:
        # PostgreSQL text and jsonb cannot hold NUL: refused here, as a push does.
        return Rejection("a label value contains the NUL character")
    return text


def _plain(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_plain(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return {pair.key: _plain(pair.value) for pair in value.kvlist_value.values}
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    if kind == "double_value" and not math.isfinite(value.double_value):
        raise ValueError("not finite")
    return getattr(value, kind) if kind else None


def service_of(resource_attributes: Iterable[KeyValue]) -> str | Rejection | None:
    """The resource's ``service.name`` as a label value (the last one, should an exporter repeat it)."""
    service: str | Rejection | None = None
    for pair in resource_attributes:
        if pair.key == SERVICE_NAME:
            service = label_value(pair.value)
    return service


def labels_of(
    attributes: Iterable[KeyValue], *, service: str | Rejection | None
) -> dict[str, str] | Rejection:
    """A data point's attributes as labels, plus ``service``; more than 10 labels reject the point."""
    if isinstance(service, Rejection):
        return Rejection(f"the resource's service.name: {service.reason}")
    labels: dict[str, str] = {}
    if service is not None:
        labels[SERVICE_LABEL] = service
    for pair in attributes:
        key = label_key(pair.key)
        if isinstance(key, Rejection):
            return key
        if key in labels:
            # Two attributes (or one and service.name) would become one label: refusing is the only
            # choice that neither loses a value silently nor invents a merged one.
            return Rejection(
                f"attribute {pair.key[:60]!r} and another attribute or service.name become label {key!r}"
            )
        value = label_value(pair.value)
        if isinstance(value, Rejection):
            return Rejection(f"attribute {pair.key[:60]!r}: {value.reason}")
        labels[key] = value
        if len(labels) > MAX_LABELS:
            return Rejection(f"more than {MAX_LABELS} labels (service included)")
    return labels
