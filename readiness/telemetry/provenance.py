"""Where a metric point came from (PRODUCT.md §8 "Provenance"): a kind and a name, stored as "kind:name".

The kind says how the number reached Readiness (pushed by the team being judged, exported over OTLP,
measured by our own probes, pulled from Prometheus or MLflow); the name says which token, health check
or pull source. Criteria may accept only some kinds, so a team cannot pass availability with numbers
it pushed itself: ``health.*`` names are reserved for the probes.
"""

from __future__ import annotations

SOURCE_KINDS = ("push", "otlp", "probe", "prometheus", "mlflow")
RESERVED_PREFIX = "health."
# Only probes write reserved names: they are Readiness' own measurements.
RESERVED_WRITERS = frozenset({"probe"})
# The column's width: the longest kind, ":", and a name (tokens and health checks have 100 characters).
MAX_SOURCE = 120
# Points stored before provenance existed were all pushed; who pushed them is not known.
LEGACY_SOURCE = "push:legacy"


def source_label(kind: str, name: str) -> str:
    """The stored source of points of ``kind`` written by ``name``: ``"probe:api"``."""
    if kind not in SOURCE_KINDS:
        raise ValueError(f"unknown source kind {kind!r}; one of {', '.join(SOURCE_KINDS)}")
    label = f"{kind}:{name}"
    if len(label) > MAX_SOURCE:
        raise ValueError(f"source {label[:40]!r}... is longer than {MAX_SOURCE} characters")
    return label


def kind_of(source: str) -> str:
    """The kind of a stored source: ``kind_of("probe:api") == "probe"`` (the name may hold colons)."""
    return source.split(":", 1)[0]


def is_reserved(metric: str) -> bool:
    """Whether a metric name belongs to the probes (PRODUCT.md §8): pushes and OTLP may not write it."""
    return metric.startswith(RESERVED_PREFIX)


def may_write_reserved(source: str) -> bool:
    return kind_of(source) in RESERVED_WRITERS
