from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from readiness.scoring.services import signoff_create
from tests.conftest import Cast
from tests.factories import MetricCriterionFactory, MetricPointFactory


def gate(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command("readiness_gate", *args, stdout=out)
    except SystemExit as exit_:
        return int(exit_.code or 0), out.getvalue()
    return 0, out.getvalue()


def test_gate_exits_1_with_blockers_and_owners_on_no_go(cast: Cast) -> None:
    MetricCriterionFactory(project=cast.project, key="p99_latency")
    code, out = gate("fraud-detector")
    assert code == 1
    assert "NO-GO for production" in out
    assert "engineering/p99_latency: missing" in out and "(owner: bob)" in out


def test_gate_exits_0_on_go(cast: Cast) -> None:
    MetricCriterionFactory(project=cast.project, key="p99_latency")
    MetricPointFactory(project=cast.project, metric="latency_ms", value=120)
    code, out = gate("fraud-detector", "--target", "pilot")
    assert code == 0 and "GO for pilot" in out


def test_gate_for_production_needs_every_signoff(cast: Cast) -> None:
    assert gate("fraud-detector", "--target", "production")[0] == 1
    for dimension in ("data_science", "engineering", "product", "security"):
        signoff_create(project=cast.project, dimension=dimension, by=cast.owner(dimension))
    assert gate("fraud-detector", "--target", "production")[0] == 0


def test_gate_on_an_unknown_project_is_an_error_with_exit_2(db: None) -> None:
    with pytest.raises(CommandError, match="unknown project") as err:
        call_command("readiness_gate", "nope")
    assert err.value.returncode == 2


def test_gate_rejects_an_unknown_target(cast: Cast) -> None:
    with pytest.raises(CommandError):
        call_command("readiness_gate", "fraud-detector", "--target", "retired")
