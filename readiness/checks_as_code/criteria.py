"""Validating one criterion of a checks-as-code file, merged over its template's definition.

A project's criteria come first from its templates, then from the file: an entry whose key is in one
of the project's templates overrides that template criterion field by field (``{key: pen_test,
valid_for_days: 365}`` is a whole criterion), any other entry must define a criterion on its own.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from django.core.exceptions import ValidationError

from readiness.checks_as_code import checkers as c
from readiness.checks_as_code.checkers import INVALID, Problems, at
from readiness.checks_as_code.plan import CriterionPlan
from readiness.projects.vocabulary import Dimension
from readiness.scoring.models import (
    KEY_PATTERN,
    METRIC_PATTERN,
    SOURCES_ATTESTATION,
    WINDOW_PATTERN,
    Aggregation,
    AppliesFrom,
    Criterion,
    DriftMethod,
    Kind,
    Op,
    Severity,
    Template,
    TemplateCriterion,
    window_retention_error,
)
from readiness.scoring.templates import template_definition_fields
from readiness.telemetry.provenance import SOURCE_KINDS

# Label filters follow the metric push rules of PRODUCT.md §3, so a filter can match a pushed point.
LABEL_KEY_PATTERN = r"[a-z_][a-z0-9_]{0,49}"
MAX_LABELS = 10

# What a criterion of each kind cannot do without (PRODUCT.md §1 "Criterion").
REQUIRED_BY_KIND: dict[str, tuple[str, ...]] = {
    Kind.METRIC: ("metric", "aggregation", "window", "op", "threshold"),
    Kind.DRIFT: ("metric", "method", "window", "reference_start", "reference_end"),
    Kind.ATTESTATION: (),
}

Checker = Callable[[Problems, str, Any], Any]


def _labels(problems: Problems, path: str, value: Any) -> Any:
    if not isinstance(value, dict):
        problems.add(path, f"expected a mapping of label names to strings, got {c.type_name(value)}")
        return INVALID
    if len(value) > MAX_LABELS:
        problems.add(path, f"at most {MAX_LABELS} labels (got {len(value)})")
        return INVALID
    result: dict[str, str] = {}
    for name, label in value.items():
        if not isinstance(name, str) or not re.fullmatch(LABEL_KEY_PATTERN, name):
            problems.add(at(path, str(name)), f"label names match {LABEL_KEY_PATTERN}")
            continue
        checked = c.text(problems, at(path, name), label, max_length=200)
        if checked is not INVALID:
            result[name] = checked
    return result if len(result) == len(value) else INVALID


def _sources(problems: Problems, path: str, value: Any) -> Any:
    """The source kinds a criterion accepts (PRODUCT.md §8): ``[probe, prometheus]``; each bad item
    is reported at its own index."""
    if not isinstance(value, list):
        problems.add(
            path, f"expected a list of source kinds ({', '.join(SOURCE_KINDS)}), got {c.type_name(value)}"
        )
        return INVALID
    found = len(problems)
    seen: set[str] = set()
    for index, kind in enumerate(value):
        if c.enum(problems, at(path, index), kind, SOURCE_KINDS) is INVALID:
            continue
        if kind in seen:
            problems.add(at(path, index), f"{kind} is listed twice")
        seen.add(kind)
    return list(value) if len(problems) == found else INVALID


def _nullable(checker: Checker, empty: Any) -> Checker:
    """``null`` (and ``""`` for strings) means "not set", e.g. to clear a template's warn_threshold."""

    def check(problems: Problems, path: str, value: Any) -> Any:
        if value is None or (value == "" and empty == ""):
            return empty() if callable(empty) else empty
        return checker(problems, path, value)

    return check


WINDOW_HINT = "a whole number and a unit m, h or d, like 15m, 24h or 30d"


def _window(problems: Problems, path: str, value: Any) -> Any:
    """A window of the right form, reaching back no further than data is kept."""
    window = c.text(problems, path, value, pattern=WINDOW_PATTERN, pattern_hint=WINDOW_HINT)
    if window is INVALID:
        return INVALID
    too_long = window_retention_error(window)
    if too_long:
        problems.add(path, too_long)
        return INVALID
    return window


CHECKERS: dict[str, Checker] = {
    "key": partial(
        c.text,
        max_length=80,
        blank=False,
        pattern=KEY_PATTERN,
        pattern_hint="lowercase letters, digits and _, starting with a letter",
    ),
    "title": partial(c.text, max_length=200, blank=False),
    "description": _nullable(c.text, ""),
    "dimension": partial(c.enum, choices=Dimension.values),
    "kind": partial(c.enum, choices=Kind.values),
    "severity": partial(c.enum, choices=Severity.values),
    "stage": partial(c.enum, choices=AppliesFrom.values),
    "remediation": _nullable(c.text, ""),
    "metric": _nullable(
        partial(
            c.text,
            max_length=100,
            pattern=METRIC_PATTERN,
            pattern_hint="1-100 characters of a-z, 0-9, _ . :, starting with a letter",
        ),
        "",
    ),
    "labels": _nullable(_labels, dict),
    "sources": _nullable(_sources, list),
    "window": _nullable(_window, ""),
    "aggregation": _nullable(partial(c.enum, choices=Aggregation.values), ""),
    "op": _nullable(partial(c.enum, choices=Op.values), ""),
    "threshold": _nullable(c.number, None),
    "warn_threshold": _nullable(c.number, None),
    "min_samples": partial(c.integer, minimum=1),
    "method": _nullable(partial(c.enum, choices=DriftMethod.values), ""),
    "reference_start": _nullable(c.timestamp, None),
    "reference_end": _nullable(c.timestamp, None),
    "evidence_required": c.boolean,
    "valid_for_days": _nullable(partial(c.integer, minimum=1, maximum=3650), None),
}


def definition_fields() -> list[str]:
    """The fields a criterion is defined by, in the order the export writes them."""
    return [name for name in template_definition_fields() if name in CHECKERS]


def definition_of(obj: Criterion | TemplateCriterion) -> dict[str, Any]:
    # A copy: labels is a dict, and a plan must never share (and later mutate) a template's.
    return {name: copy.deepcopy(getattr(obj, name)) for name in definition_fields()}


def definition_defaults() -> dict[str, Any]:
    return {name: Criterion._meta.get_field(name).get_default() for name in definition_fields()}


def criterion_bases(templates: Iterable[Template]) -> dict[str, TemplateCriterion]:
    """Key → the template criterion a file entry with that key merges over: the first template
    listed that has the key wins, as ``template_apply`` copies the first one it meets."""
    bases: dict[str, TemplateCriterion] = {}
    for template in templates:
        for template_criterion in template.criteria.all():
            bases.setdefault(template_criterion.key, template_criterion)
    return bases


def default_title(key: str) -> str:
    return key.replace("_", " ").capitalize()


def criterion_validate(
    problems: Problems, path: str, entry: Any, bases: dict[str, TemplateCriterion]
) -> CriterionPlan | None:
    """Check one entry of a project's ``criteria``; every problem is recorded at its path."""
    entry = c.mapping(problems, path, entry, definition_fields())
    if entry is None:
        return None
    found = len(problems)
    given: dict[str, Any] = {}
    for name, raw in entry.items():
        if name in CHECKERS:
            value = CHECKERS[name](problems, at(path, name), raw)
            if value is not INVALID:
                given[name] = value
    if "key" not in entry:
        problems.add(at(path, "key"), "required")
    if "key" not in given:
        return None
    key = given["key"]
    base = bases.get(key)
    merged = definition_of(base) if base is not None else definition_defaults()
    merged.update(given)
    if base is None:
        for name in ("dimension", "kind"):
            if name not in entry:
                problems.add(
                    at(path, name),
                    f"required (criterion {key!r} is not in any of the project's templates)",
                )
        if "title" not in entry:
            merged["title"] = default_title(key)
    kind = merged["kind"]
    for name in REQUIRED_BY_KIND.get(kind, ()):
        already_reported = name in entry and name not in given
        if merged[name] in (None, "") and not already_reported:
            problems.add(at(path, name), f"required for a {kind} criterion")
    _check_consistency(problems, path, merged, kind)
    if len(problems) > found:
        return None
    _check_model(problems, path, merged)
    if len(problems) > found:
        return None
    return CriterionPlan(
        path=path,
        key=key,
        fields=merged,
        template_key=base.template.key if base is not None else None,
        given=tuple(name for name in entry if name in CHECKERS),
    )


def _check_consistency(problems: Problems, path: str, merged: dict[str, Any], kind: str) -> None:
    if kind == Kind.ATTESTATION and merged["sources"]:
        problems.add(at(path, "sources"), SOURCES_ATTESTATION)
    start, end = merged["reference_start"], merged["reference_end"]
    if kind == Kind.DRIFT and start is not None and end is not None and start >= end:
        problems.add(at(path, "reference_end"), "must be after reference_start")
    threshold, warn = merged["threshold"], merged["warn_threshold"]
    if kind == Kind.METRIC and threshold is not None and warn is not None:
        # The warn band lies on the passing side of the threshold (PRODUCT.md §1).
        if merged["op"] == Op.LTE and warn > threshold:
            problems.add(
                at(path, "warn_threshold"), f'with op "<=" it must be at most threshold {threshold:g}'
            )
        if merged["op"] == Op.GTE and warn < threshold:
            problems.add(
                at(path, "warn_threshold"), f'with op ">=" it must be at least threshold {threshold:g}'
            )


def _check_model(problems: Problems, path: str, merged: dict[str, Any]) -> None:
    """The model's own field validation, reported at the YAML path rather than by Django field."""
    candidate = Criterion(**merged)
    try:
        candidate.clean_fields(
            exclude=["project", "position", "source_template", "not_applicable_reason", "updated_at"]
        )
    except ValidationError as exc:
        for name, messages in exc.message_dict.items():
            problems.add(at(path, name), " ".join(messages))
