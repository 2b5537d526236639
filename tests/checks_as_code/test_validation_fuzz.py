"""Whatever a YAML file holds, validation answers with a plan or with ``ChecksInvalid``, never with a
crash; and whatever passes validation applies without a database error (the point of validating
everything first)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from readiness.checks_as_code.apply import checks_import
from readiness.checks_as_code.checkers import ChecksInvalid
from readiness.checks_as_code.loader import document_load
from readiness.checks_as_code.plan import ImportPlan
from readiness.checks_as_code.schema import (
    CHANNEL_KEYS,
    HEALTH_CHECK_KEYS,
    PROJECT_KEYS,
    TEAM_KEYS,
    TOP_KEYS,
    USER_KEYS,
    checks_validate,
)
from readiness.scoring.templates import template_definition_fields
from tests.checks_as_code.conftest import FRAUD_YAML

pytestmark = pytest.mark.usefixtures("people")

KNOWN_KEYS = sorted(
    {*TOP_KEYS, *USER_KEYS, *TEAM_KEYS, *PROJECT_KEYS, *HEALTH_CHECK_KEYS, *CHANNEL_KEYS}
    | set(template_definition_fields())
    | {"data_science", "engineering", "product", "security"}
)
# Values that are valid somewhere, so random documents get past the first checks now and then.
WORDS = [
    "alice", "bob", "fraud", "fraud-detector", "baseline", "ml_test_score", "metric", "drift",
    "attestation", "engineering", "security", "blocker", "advisory", "pilot", "production", "p99",
    "mean", "<=", ">=", "24h", "30d", "latency_ms", "psi", "ks", "webhook", "email", "GET",
    "http://127.0.0.1:9000/healthz", "a@example.com", "2026-01-01T00:00:00Z", "2027-03-01",
    "", " ", "\x00", "é", "1e400",
]  # fmt: skip

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(WORDS)
)
keys = st.sampled_from(KNOWN_KEYS) | st.text(max_size=8) | st.integers(0, 3) | st.none() | st.booleans()
documents = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=6),
    max_leaves=40,
)
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@FUZZ
@given(document=documents | st.dictionaries(st.sampled_from(TOP_KEYS), documents, max_size=3))
def test_validator_never_crashes_on_random_data(document: Any) -> None:
    try:
        assert isinstance(checks_validate(document), ImportPlan)
        event("valid")
    except ChecksInvalid as exc:
        event("refused")
        assert exc.errors
        assert all(isinstance(path, str) and path and isinstance(m, str) for path, m in exc.errors)


def _nodes(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a document where a value sits."""
    found = [path]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _nodes(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _nodes(child, (*path, index))
    return found


FRAUD = document_load(FRAUD_YAML.read_text(encoding="utf-8"))
PLACES = [place for place in _nodes(FRAUD) if place]


@FUZZ
@given(
    place=st.sampled_from(PLACES),
    # Mostly plain values, so many mutated documents still validate and reach the database.
    value=st.one_of(
        st.sampled_from(WORDS), st.text(max_size=30), st.integers(-5, 5000), st.floats(), documents
    ),
    add_key=st.sampled_from([False, False, False, True]),
)
def test_whatever_validates_applies_without_database_errors(
    place: tuple[Any, ...], value: Any, add_key: bool
) -> None:
    document = copy.deepcopy(FRAUD)
    target = document
    for part in place[:-1]:
        target = target[part]
    if add_key and isinstance(target, dict):
        target[f"{place[-1]}_x"] = value  # an unknown key next to a known one
    else:
        target[place[-1]] = value
    try:
        report = checks_import(document=document, dry_run=True, actor=None)
    except ChecksInvalid as exc:
        event("refused")
        assert exc.errors
    else:
        event("applied")
        assert report.dry_run


FREE_TEXT_PLACES = [
    ("users", 0, "name"),
    ("teams", 0, "name"),
    ("projects", 0, "name"),
    ("projects", 0, "description"),
    ("projects", 0, "definitions"),
    ("projects", 0, "criteria", 0, "title"),
    ("projects", 0, "criteria", 0, "remediation"),
    ("projects", 0, "criteria", 0, "labels"),
    ("projects", 0, "health_checks", 0, "name"),
    ("projects", 0, "health_checks", 0, "expected_body_contains"),
]


@FUZZ
@given(place=st.sampled_from(FREE_TEXT_PLACES), text=st.text(max_size=400))
def test_any_text_in_free_text_fields_applies_or_is_refused(place: tuple[Any, ...], text: str) -> None:
    document = copy.deepcopy(FRAUD)
    target = document
    for part in place[:-2]:
        target = target[part]
    if place[-1] == "definitions":
        target[place[-2]]["definitions"] = {"product": text}
    elif place[-1] == "labels":
        target[place[-2]]["labels"] = {"model_version": text}
    else:
        target[place[-2]][place[-1]] = text
    try:
        report = checks_import(document=document, dry_run=True, actor=None)
    except ChecksInvalid as exc:
        event("refused")
        assert exc.errors
    else:
        event("applied")
        assert report.dry_run
