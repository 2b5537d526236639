"""A criterion window may be at most the rollup retention (PRODUCT.md §9), whatever it is set to: the
import, the admin form (the model's clean) and the metric API all ask window_retention_error."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from readiness.checks_as_code.checkers import Problems
from readiness.checks_as_code.criteria import CHECKERS
from readiness.scoring.models import window_retention_error
from tests.factories import MetricCriterionFactory, ProjectFactory


@pytest.mark.parametrize(
    ("window", "refused"), [("30d", False), ("720h", False), ("721h", True), ("31d", True)]
)
def test_window_is_refused_exactly_past_the_rollup_retention(
    settings: object, window: str, refused: bool
) -> None:
    settings.READINESS_RAW_RETENTION_DAYS = 7
    settings.READINESS_ROLLUP_RETENTION_DAYS = 30
    assert (window_retention_error(window) is not None) == refused
    problems = Problems()
    CHECKERS["window"](problems, "criteria[0].window", window)
    assert bool(problems) == refused


@pytest.mark.django_db
def test_a_criterion_with_a_window_past_retention_does_not_validate(settings: object) -> None:
    settings.READINESS_ROLLUP_RETENTION_DAYS = 90
    criterion = MetricCriterionFactory.build(project=ProjectFactory(), window="91d")
    with pytest.raises(ValidationError) as refused:
        criterion.full_clean()
    assert refused.value.message_dict["window"] == [
        "window 91d is longer than the 90d that metric data is kept (READINESS_ROLLUP_RETENTION_DAYS): "
        "it would judge points that are gone"
    ]
