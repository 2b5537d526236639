"""A stored criterion as the pure engine reads it (`CriterionSpec`): the one translation from the ORM."""

from __future__ import annotations

from readiness.scoring.facts import CriterionSpec
from readiness.scoring.models import Criterion


def criterion_spec(criterion: Criterion) -> CriterionSpec:
    return CriterionSpec(
        key=criterion.key,
        dimension=criterion.dimension,
        kind=criterion.kind,
        title=criterion.title,
        severity=criterion.severity,
        stage=criterion.stage,
        remediation=criterion.remediation,
        metric=criterion.metric,
        aggregation=criterion.aggregation or "latest",
        window=criterion.window,
        op=criterion.op or ">=",
        threshold=criterion.threshold,
        warn_threshold=criterion.warn_threshold,
        min_samples=criterion.min_samples,
        sources=tuple(criterion.sources or ()),
        method=criterion.method or "psi",
        evidence_required=criterion.evidence_required,
        valid_for_days=criterion.valid_for_days,
        not_applicable_reason=criterion.not_applicable_reason,
    )
