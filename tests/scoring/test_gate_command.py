from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable, Iterator

import pytest
import time_machine
from django.core.management import CommandError, call_command
from prometheus_client import REGISTRY

from readiness.projects.models import Project
from readiness.scoring.models import Scorecard
from readiness.scoring.services import signoff_create, waiver_approve
from tests.conftest import Cast
from tests.factories import (
    AttestationCriterionFactory,
    AttestationFactory,
    MetricCriterionFactory,
    MetricPointFactory,
    WaiverFactory,
)

T0 = dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.UTC)
ENDS = T0 + dt.timedelta(hours=1)  # when the waiver or the attestation the go rests on expires


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


# --- Never from stale evidence (PRODUCT.md §3) -------------------------------------------------------


def evaluations() -> float:
    return REGISTRY.get_sample_value("readiness_evaluation_duration_seconds_count") or 0.0


@pytest.fixture
def clock() -> Iterator[time_machine.Coordinates]:
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


@pytest.fixture
def prototype(cast: Cast, clock: time_machine.Coordinates) -> Project:
    """A prototype targets pilot, where sign-offs are optional: its decision follows its criteria."""
    Project.objects.filter(pk=cast.project.pk).update(stage="prototype")
    cast.project.refresh_from_db()
    return cast.project


def go_on_a_waiver(cast: Cast, project: Project) -> None:
    """p99_latency has no data (missing), waived until ENDS."""
    criterion = MetricCriterionFactory(project=project, key="p99_latency")
    waiver = WaiverFactory(criterion=criterion, requested_by=cast.member, expires_at=ENDS)
    waiver_approve(waiver=waiver, by=cast.engineering)


def go_on_an_attestation(cast: Cast, project: Project) -> None:
    """The threat model is re-attested every 30 days; the last attestation expires at ENDS."""
    criterion = AttestationCriterionFactory(project=project, key="threat_model", valid_for_days=30)
    AttestationFactory(
        criterion=criterion, attested_by=cast.security, attested_at=ENDS - dt.timedelta(days=30)
    )


@pytest.mark.parametrize("setup", [go_on_a_waiver, go_on_an_attestation])
def test_gate_command_exits_1_a_second_after_what_made_it_go_expired(
    cast: Cast,
    prototype: Project,
    clock: time_machine.Coordinates,
    setup: Callable[[Cast, Project], None],
) -> None:
    setup(cast, prototype)
    assert gate("fraud-detector")[0] == 0
    clock.move_to(ENDS - dt.timedelta(seconds=1))
    assert gate("fraud-detector")[0] == 0
    clock.move_to(ENDS + dt.timedelta(seconds=1))
    code, out = gate("fraud-detector")
    assert code == 1 and "NO-GO for pilot" in out and ": missing: " in out
    assert list(Scorecard.objects.values_list("decision", flat=True)) == ["no_go", "go"]


def test_gate_command_within_60_s_answers_from_the_latest_scorecard_without_evaluating(
    cast: Cast, prototype: Project, clock: time_machine.Coordinates
) -> None:
    go_on_a_waiver(cast, prototype)  # the approval evaluated and stored a go scorecard at T0
    # A blocker added behind the services' back (no re-evaluation): only a fresh evaluation sees it.
    AttestationCriterionFactory(project=prototype, key="threat_model")
    before = evaluations()
    clock.move_to(T0 + dt.timedelta(seconds=59))
    assert gate("fraud-detector")[0] == 0
    assert Scorecard.objects.count() == 1 and evaluations() == before
    clock.move_to(T0 + dt.timedelta(seconds=60))
    code, out = gate("fraud-detector")
    assert code == 1 and "security/threat_model: missing" in out
    assert Scorecard.objects.count() == 2 and evaluations() == before + 1
