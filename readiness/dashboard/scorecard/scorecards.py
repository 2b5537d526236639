"""Reads behind the scorecard page: the latest stored scorecard of one project, shaped into a decision
banner, its blockers and one column per dimension.

Two queries whatever the number of criteria: the scorecard (its payload holds every result) and one
for the criteria's comparison operators and drift methods, which the payload leaves out but a reader
needs to tell "412 vs 300" as a failure of "at most 300" (none when the caller passes the criteria).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from readiness.dashboard.common.display import (
    DIMENSION_LABELS,
    SIGNOFF_LABELS,
    STATUS_LABELS,
    ShowsDecision,
    ShowsStatus,
    format_number,
    parse_time,
)
from readiness.projects.models import Project
from readiness.projects.vocabulary import DIMENSION_DEFINITIONS, Dimension
from readiness.scoring import mltestscore
from readiness.scoring.models import Criterion, Scorecard
from readiness.scoring.services import latest_scorecard

# Statuses worth the reader's attention: their remediation is shown without a click.
NEEDS_ACTION = frozenset({"fail", "missing", "warn"})
# Columns list what is wrong before what is fine.
_URGENCY = {"fail": 0, "missing": 1, "warn": 2, "waived": 3, "pass": 4, "not_applicable": 5}


@dataclass(frozen=True)
class CriterionLine(ShowsStatus):
    key: str
    dimension: str
    title: str
    kind: str
    severity: str
    status: str
    value: str  # formatted, "—" when nothing was measured
    requirement: str  # what passes, in words: "target ≤ 300 (warns above 250)"
    reason: str
    as_of: datetime | None
    remediation: str
    applies: bool
    sources: tuple[str, ...] = ()  # where the value's points came from: ("probe:api", "push:ci")

    @property
    def needs_action(self) -> bool:
        return self.applies and self.status in NEEDS_ACTION

    @property
    def provenance(self) -> str:
        """The sources in words, next to the value: "from probes: api, db; pushes: ci" (PRODUCT.md §8)."""
        return provenance_text(self.sources)


@dataclass(frozen=True)
class DimensionColumn(ShowsStatus):
    key: str
    status: str
    score: float
    signoff_state: str
    signoff_by: str | None
    signoff_at: datetime | None
    owner: str | None
    stakeholder: str
    definition: str
    criteria: list[CriterionLine]
    ml_tests: list[CriterionLine]  # the ML Test Score's attestations, folded away: a maturity measure

    @property
    def label(self) -> str:
        return DIMENSION_LABELS[self.key]

    @property
    def signoff_label(self) -> str:
        return SIGNOFF_LABELS.get(self.signoff_state, self.signoff_state)

    @property
    def ml_tests_summary(self) -> str:
        """ "2 warn · 12 pass": folded tests must still say when they pull the dimension's score down."""
        counts = Counter(line.status for line in self.ml_tests)
        ordered = sorted(counts.items(), key=lambda item: _URGENCY.get(item[0], 9))
        return " · ".join(f"{n} {STATUS_LABELS.get(status, status).lower()}" for status, n in ordered)


@dataclass(frozen=True)
class BlockerLine(ShowsStatus):
    dimension: str | None
    criterion: str | None
    title: str
    status: str
    reason: str
    owner: str | None
    remediation: str

    @property
    def dimension_label(self) -> str:
        return DIMENSION_LABELS.get(self.dimension or "", "Whole project")


@dataclass(frozen=True)
class MLTestScoreView:
    score: float
    band: str
    sections: list[tuple[str, float]]  # (label, 0 to 7)


@dataclass(frozen=True)
class ScorecardPage(ShowsDecision):
    scorecard: Scorecard
    decision: str
    target: str
    computed_at: datetime | None
    blockers: list[BlockerLine]
    columns: list[DimensionColumn]
    ml_test_score: MLTestScoreView | None


def scorecard_page(*, project: Project, criteria: list[Criterion] | None = None) -> ScorecardPage:
    """``project`` comes with its owners selected (``select_related``): the page names each of them.
    ``criteria``, when the caller has them already (the scorecard page reads them for its charts and
    actions), save the query for their comparison operators."""
    scorecard = latest_scorecard(project=project)
    if criteria is not None:
        comparisons = {criterion.key: (criterion.op, criterion.method) for criterion in criteria}
    else:
        comparisons = {
            key: (op, method)
            for key, op, method in project.criteria.order_by().values_list("key", "op", "method")
        }
    return shape_scorecard(scorecard=scorecard, project=project, comparisons=comparisons)


def shape_scorecard(
    *, scorecard: Scorecard, project: Project, comparisons: dict[str, tuple[str, str]]
) -> ScorecardPage:
    payload: dict[str, Any] = scorecard.payload
    owners = {dim: _person(project.owner(dim)) for dim in Dimension.values}
    usernames = project.owner_usernames()
    lines = [
        _criterion_line(result, comparisons.get(result["key"], ("", ""))) for result in payload["criteria"]
    ]
    remediation = {line.key: line for line in lines}
    columns = []
    for dim in Dimension.values:
        result = payload["dimensions"].get(dim) or {"status": "pass", "score": 100.0, "signoff": {}}
        signoff = result.get("signoff") or {}
        mine = [line for line in lines if line.dimension == dim]
        columns.append(
            DimensionColumn(
                key=dim,
                status=result["status"],
                score=result["score"],
                signoff_state=signoff.get("state") or "missing",
                signoff_by=signoff.get("by"),
                signoff_at=parse_time(signoff.get("at")),
                owner=owners[dim],
                stakeholder=DIMENSION_DEFINITIONS[dim][0],
                definition=project.definition(dim),
                # Failing first: the column answers "what is wrong here" before "what is fine".
                criteria=_by_urgency(line for line in mine if not mltestscore.is_test_key(line.key)),
                ml_tests=[line for line in mine if mltestscore.is_test_key(line.key)],
            )
        )
    blockers = [
        _blocker_line(blocker, remediation.get(blocker.get("criterion") or ""), owners, usernames)
        for blocker in payload["blockers"]
    ]
    return ScorecardPage(
        scorecard=scorecard,
        decision=payload["decision"],
        target=payload["target"],
        computed_at=parse_time(payload.get("computed_at")),
        blockers=blockers,
        columns=columns,
        ml_test_score=_ml_test_score(payload.get("ml_test_score")),
    )


def _by_urgency(lines: Any) -> list[CriterionLine]:
    return sorted(lines, key=lambda line: (not line.applies, _URGENCY.get(line.status, 9)))


def _person(user: Any) -> str | None:
    if user is None:
        return None
    full = user.get_full_name()
    return f"{full} ({user.get_username()})" if full else user.get_username()


def _criterion_line(result: dict[str, Any], comparison: tuple[str, str]) -> CriterionLine:
    return CriterionLine(
        key=result["key"],
        dimension=result["dimension"],
        title=result.get("title") or result["key"],
        kind=result["kind"],
        severity=result["severity"],
        status=result["status"],
        value=format_number(result.get("value")) if result.get("value") is not None else "—",
        requirement=requirement(
            kind=result["kind"],
            op=comparison[0],
            method=comparison[1],
            threshold=result.get("threshold"),
            warn_threshold=result.get("warn_threshold"),
        ),
        reason=result.get("reason") or "",
        as_of=parse_time(result.get("as_of")),
        remediation=result.get("remediation") or "",
        applies=bool(result.get("applies", True)),
        # Absent from scorecards stored before provenance was recorded.
        sources=tuple(result.get("sources") or ()),
    )


# How each source kind reads after "from" (PRODUCT.md §8 names the kinds).
SOURCE_KIND_WORDS = {
    "push": "pushes",
    "otlp": "OTLP exports",
    "probe": "probes",
    "prometheus": "Prometheus",
    "mlflow": "MLflow",
}


def provenance_text(sources: tuple[str, ...] | list[str]) -> str:
    names: dict[str, list[str]] = {}
    for source in sources:
        kind, _, name = source.partition(":")
        names.setdefault(kind, []).append(name)
    groups = [f"{SOURCE_KIND_WORDS.get(kind, kind)}: {', '.join(found)}" for kind, found in names.items()]
    return f"from {'; '.join(groups)}" if groups else ""


def requirement(
    *, kind: str, op: str, method: str, threshold: float | None, warn_threshold: float | None
) -> str:
    """What passes, in words, following the rules of PRODUCT.md §1 for each kind."""
    if kind == "attestation" or threshold is None:
        return ""
    limit = format_number(threshold)
    if kind == "drift":
        if method == "ks":
            return f"KS p-value; fails below {limit}"
        warn = f" (warns at ≥ {format_number(warn_threshold)})" if warn_threshold is not None else ""
        return f"PSI; fails at ≥ {limit}{warn}"
    if op == "<=":
        warn = f" (warns above {format_number(warn_threshold)})" if warn_threshold is not None else ""
        return f"target ≤ {limit}{warn}"
    if op == ">=":
        warn = f" (warns below {format_number(warn_threshold)})" if warn_threshold is not None else ""
        return f"target ≥ {limit}{warn}"
    return f"threshold {limit}"


def _blocker_line(
    blocker: dict[str, Any],
    criterion: CriterionLine | None,
    owners: dict[str, str | None],
    usernames: dict[str, str | None],
) -> BlockerLine:
    dim = blocker.get("dimension")
    status = blocker.get("status", "")
    # The payload names the owner at evaluation time; show today's owner's full name when it is them.
    owner = blocker.get("owner")
    if dim and owner and usernames.get(dim) == owner:
        owner = owners[dim]
    if criterion is not None:
        title, remediation = criterion.title, criterion.remediation
    elif status in ("signoff_missing", "signoff_stale"):
        title = f"{DIMENSION_LABELS.get(dim or '', '')} sign-off"
        remediation = "Once the dimension passes, its responsible person reviews it and signs off."
    elif status == "prohibited":
        title, remediation = "Risk tier", "A prohibited AI system is never go: re-scope it or retire it."
    else:
        title, remediation = blocker.get("criterion") or "", ""
    return BlockerLine(
        dimension=dim,
        criterion=blocker.get("criterion"),
        title=title,
        status=status,
        reason=blocker.get("reason") or "",
        owner=owner,
        remediation=remediation,
    )


_SECTION_LABELS = {
    "features_and_data": "Features and data",
    "model_development": "Model development",
    "ml_infrastructure": "ML infrastructure",
    "monitoring": "Monitoring",
}


def _ml_test_score(data: dict[str, Any] | None) -> MLTestScoreView | None:
    if not data:
        return None
    sections = [(_SECTION_LABELS.get(name, name), float(score)) for name, score in data["sections"].items()]
    return MLTestScoreView(score=float(data["score"]), band=data["band"], sections=sections)
