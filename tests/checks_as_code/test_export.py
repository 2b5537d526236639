from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from django.core.management import CommandError

from readiness.alerts.models import Channel
from readiness.checks_as_code.export import checks_export
from readiness.projects.models import Project
from readiness.scoring.models import Criterion, Template
from readiness.scoring.templates import template_apply
from readiness.telemetry.models import HealthCheck
from tests.checks_as_code.conftest import FRAUD_YAML, db_snapshot, run_command
from tests.conftest import Cast
from tests.factories import MetricCriterionFactory, ProjectFactory, TeamFactory, UserFactory


def round_trip(write_yaml: Callable) -> tuple[str, str, str]:
    """Export, import the export, export again; returns both exports and the import's output."""
    first = run_command("readiness_export").stdout
    imported = run_command("readiness_import", write_yaml(first, "export.yaml")).stdout
    second = run_command("readiness_export").stdout
    return first, second, imported


def test_export_import_export_is_identical_for_the_product_example(
    people: None, write_yaml: Callable
) -> None:
    run_command("readiness_import", str(FRAUD_YAML))
    before = db_snapshot()

    first, second, imported = round_trip(write_yaml)

    assert second == first
    assert "No changes" in imported
    assert db_snapshot() == before


def test_round_trip_with_baseline_and_ml_test_score(cast: Cast, write_yaml: Callable) -> None:
    project = cast.project
    for key in ("baseline", "ml_test_score"):
        template_apply(project=project, template=Template.objects.get(key=key))
    # The project's own tuning, away from the templates' definitions in every direction: a value
    # changed, a template value cleared, an advisory test raised to the default (blocker).
    Criterion.objects.filter(project=project, key="latency_p99").update(threshold=450.0)
    Criterion.objects.filter(project=project, key="model_quality").update(warn_threshold=None)
    Criterion.objects.filter(project=project, key="mlts_monitoring_1").update(severity="blocker")
    Criterion.objects.filter(project=project, key="drift").update(
        reference_start=dt.datetime(2026, 1, 10, 12, 30, tzinfo=dt.UTC), labels={"region": "eu"}
    )
    MetricCriterionFactory(project=project, key="queue_depth", metric="queue.depth", position=99)
    HealthCheck.objects.create(
        project=project, name="model", url="https://model.internal/ready", expected_body_contains="ok"
    )
    Channel.objects.create(project=project, kind="email", to=["b@example.com", "a@example.com"])
    before = db_snapshot()

    first, second, imported = round_trip(write_yaml)

    assert second == first
    assert "No changes" in imported
    assert db_snapshot() == before
    exported = yaml.safe_load(first)["projects"][0]
    assert exported["templates"] == ["baseline", "ml_test_score"]
    by_key = {c["key"]: c for c in exported["criteria"]}
    assert set(by_key) == set(project.criteria.values_list("key", flat=True))
    assert by_key["mlts_monitoring_1"]["severity"] == "blocker"  # written although it is the default
    assert by_key["model_quality"]["warn_threshold"] is None
    assert by_key["latency_p99"]["threshold"] == 450


def test_exported_project_is_recreated_identically(people: None, write_yaml: Callable) -> None:
    run_command("readiness_import", str(FRAUD_YAML))
    first = run_command("readiness_export").stdout
    Project.objects.all().delete()

    run_command("readiness_import", write_yaml(first))

    assert run_command("readiness_export").stdout == first


def test_criterion_sources_survive_export_and_reimport(people: None, write_yaml: Callable) -> None:
    """PRODUCT.md §8: a criterion's accepted source kinds are part of its definition in the file."""
    run_command("readiness_import", str(FRAUD_YAML))
    document = yaml.safe_load(run_command("readiness_export").stdout)
    criteria = {c["key"]: c for c in document["projects"][0]["criteria"]}
    assert criteria["availability"]["sources"] == ["probe", "prometheus"]  # from the baseline
    assert "sources" not in criteria["p99_latency"]  # every kind: nothing to write
    criteria["p99_latency"]["sources"] = ["otlp", "prometheus"]
    criteria["availability"]["sources"] = []  # cleared: every kind again
    run_command("readiness_import", write_yaml(document))

    stored = dict(Criterion.objects.values_list("key", "sources"))
    assert (stored["p99_latency"], stored["availability"]) == (["otlp", "prometheus"], [])
    first, second, _ = round_trip(write_yaml)
    assert second == first
    exported = {c["key"]: c for c in yaml.safe_load(first)["projects"][0]["criteria"]}
    assert exported["p99_latency"]["sources"] == ["otlp", "prometheus"]
    assert exported["availability"]["sources"] == []


def test_a_digest_channel_survives_export_and_reimport(people: None, write_yaml: Callable) -> None:
    run_command("readiness_import", str(FRAUD_YAML))
    Channel.objects.filter(kind="webhook").update(digest=True)
    first = run_command("readiness_export").stdout
    assert "digest: true" in first
    Project.objects.all().delete()

    run_command("readiness_import", write_yaml(first))

    assert Channel.objects.get(kind="webhook").digest
    assert run_command("readiness_export").stdout == first


def test_export_of_one_project_holds_only_its_team_and_people(cast: Cast) -> None:
    other_team = TeamFactory(slug="payments")
    other_team.members.add(UserFactory(username="zoe"))
    ProjectFactory(slug="payments-risk", team=other_team)

    document = yaml.safe_load(checks_export(project_slug="fraud-detector"))

    assert [p["slug"] for p in document["projects"]] == ["fraud-detector"]
    assert [t["slug"] for t in document["teams"]] == ["fraud"]
    assert [u["username"] for u in document["users"]] == ["alice", "bob", "carol", "dave", "mia"]


def test_export_writes_the_output_file(cast: Cast, tmp_path: Path) -> None:
    target = tmp_path / "checks.yaml"

    run_command("readiness_export", "--project", "fraud-detector", "--output", str(target))

    assert target.read_text(encoding="utf-8") == checks_export(project_slug="fraud-detector")


def test_export_of_unknown_project_is_an_error(db: None) -> None:
    with pytest.raises(CommandError, match="unknown project 'nope'"):
        run_command("readiness_export", "--project", "nope")


def test_export_of_empty_database_imports(db: None, write_yaml: Callable) -> None:
    text = run_command("readiness_export").stdout
    assert "No changes" in run_command("readiness_import", write_yaml(text)).stdout
