"""Built-in templates (loaded by migration and by the loader) and applying templates to projects."""

from __future__ import annotations

import datetime as dt
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from readiness.audit.models import AuditEntry
from readiness.scoring.models import AppliedTemplate, Criterion, Template, TemplateCriterion
from readiness.scoring.templates import (
    BUILTIN_TEMPLATES_DIR,
    TemplateDataError,
    criterion_definition_dict,
    template_apply,
    template_definition_fields,
    template_load_builtin,
)
from tests.factories import AttestationCriterionFactory, MetricCriterionFactory

# PRODUCT.md §1 "Template" 1. baseline, dimension by dimension.
BASELINE_KEYS = {
    "data_science": ["model_quality", "drift", "model_card"],
    "engineering": [
        "availability",
        "latency_p99",
        "error_rate",
        "throughput",
        "rollback_plan",
        "canary_or_shadow",
        "on_call_owner",
        "fallback_behaviour",
        "monitoring_alerting",
    ],
    "product": ["feature_reachable", "success_metric_defined", "cost_per_prediction", "user_docs_support"],
    "security": [
        "threat_model",
        "data_classification_pii",
        "access_control",
        "secrets_management",
        "audit_logging",
        "eu_ai_act_classification",
        "pen_test",
        "incident_response",
    ],
}
MLTS_SECTIONS = {
    "features_and_data": "data_science",
    "model_development": "data_science",
    "ml_infrastructure": "engineering",
    "monitoring": "engineering",
}
EU_AI_ACT_KEYS = [
    "risk_management_system",
    "data_governance",
    "technical_documentation",
    "automatic_logging",
    "transparency_instructions",
    "human_oversight",
    "accuracy_robustness_cybersecurity",
    "conformity_assessment",
]
BAD_KIND = """\
key: broken
name: Broken
version: 1
criteria:
  - {key: fine, title: Fine, dimension: product, kind: attestation}
  - {key: oddity, title: Odd, dimension: product, kind: hunch}
"""


def criteria_of(key: str) -> list[TemplateCriterion]:
    return list(TemplateCriterion.objects.filter(template__key=key).order_by("position"))


@pytest.fixture
def builtin_copy(tmp_path: Path) -> Path:
    """A copy of the data files a test may edit."""
    for path in BUILTIN_TEMPLATES_DIR.glob("*.yaml"):
        (tmp_path / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    return tmp_path


# --- Built-in templates ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_baseline_exists_after_migrate_with_every_listed_criterion() -> None:
    template = Template.objects.get(key="baseline")
    assert template.builtin and template.name == "Four definitions of done"
    by_dimension: dict[str, list[str]] = {}
    for criterion in criteria_of("baseline"):
        by_dimension.setdefault(criterion.dimension, []).append(criterion.key)
        assert criterion.title and criterion.description and criterion.remediation
    assert by_dimension == BASELINE_KEYS


@pytest.mark.django_db
def test_baseline_metrics_carry_the_product_defaults() -> None:
    criteria = {c.key: c for c in criteria_of("baseline")}
    availability = criteria["availability"]
    assert (availability.kind, availability.metric) == ("metric", "health.up")
    assert (availability.aggregation, availability.window) == ("mean", "30d")
    assert (availability.op, availability.threshold) == (">=", 0.999)
    latency = criteria["latency_p99"]
    assert (latency.metric, latency.aggregation, latency.window) == ("latency_ms", "p99", "24h")
    assert latency.op == "<="
    assert latency.warn_threshold < latency.threshold
    drift = criteria["drift"]
    assert (drift.kind, drift.method) == ("drift", "psi")
    assert drift.reference_start == dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    assert criteria["pen_test"].stage == "production"
    assert criteria["cost_per_prediction"].op == "<="


@pytest.mark.django_db
def test_ml_test_score_has_the_28_tests_as_advisory_attestations_from_pilot() -> None:
    criteria = criteria_of("ml_test_score")
    expected = [f"mlts_{section}_{n}" for section in MLTS_SECTIONS for n in range(1, 8)]
    assert [c.key for c in criteria] == expected
    for criterion in criteria:
        section = criterion.key.removeprefix("mlts_").rsplit("_", 1)[0]
        assert criterion.dimension == MLTS_SECTIONS[section]
        assert (criterion.kind, criterion.severity, criterion.stage) == ("attestation", "advisory", "pilot")
        assert criterion.valid_for_days == 90
        assert criterion.description and criterion.remediation
    titles = {c.key: c.title for c in criteria}
    assert titles["mlts_features_and_data_1"] == "Feature expectations are captured in a schema"
    assert titles["mlts_model_development_5"] == "A simpler model is not better"
    assert titles["mlts_monitoring_7"] == "Prediction quality has not regressed"
    assert "minimum" in Template.objects.get(key="ml_test_score").description


@pytest.mark.django_db
def test_eu_ai_act_high_risk_has_its_eight_blocker_attestations_with_evidence() -> None:
    criteria = criteria_of("eu_ai_act_high_risk")
    assert [c.key for c in criteria] == EU_AI_ACT_KEYS
    for criterion in criteria:
        assert (criterion.kind, criterion.severity) == ("attestation", "blocker")
        assert criterion.evidence_required and criterion.valid_for_days == 365
    dimensions = {c.key: c.dimension for c in criteria}
    assert dimensions["data_governance"] == "data_science"
    assert dimensions["human_oversight"] == "product"
    assert "six months" in next(c for c in criteria if c.key == "automatic_logging").title


@pytest.mark.django_db
def test_migration_and_loader_agree_on_the_data_files() -> None:
    reports = template_load_builtin()
    assert [str(r) for r in reports] == [
        "baseline v2: unchanged",
        "eu_ai_act_high_risk v1: unchanged",
        "ml_test_score v1: unchanged",
    ]
    assert not AuditEntry.objects.filter(action__startswith="template.").exists()


@pytest.mark.django_db
def test_loader_is_idempotent() -> None:
    Template.objects.filter(key="baseline").delete()
    first = template_load_builtin()
    second = template_load_builtin()
    assert {r.key: r.status for r in first}["baseline"] == "created"
    assert {r.status for r in second} == {"unchanged"}
    assert len(criteria_of("baseline")) == sum(map(len, BASELINE_KEYS.values()))
    assert AuditEntry.objects.filter(action="template.create").count() == 1


@pytest.mark.django_db
def test_reload_restores_an_edited_criterion_and_bumps_the_version() -> None:
    TemplateCriterion.objects.filter(template__key="baseline", key="latency_p99").update(threshold=900)
    reports = {r.key: r for r in template_load_builtin()}
    assert (reports["baseline"].status, reports["baseline"].version) == ("updated", 3)
    assert Template.objects.get(key="baseline").version == 3
    assert TemplateCriterion.objects.get(template__key="baseline", key="latency_p99").threshold == 500
    entry = AuditEntry.objects.get(action="template.update")
    assert entry.actor_label == "system"
    assert entry.before["version"] == 2 and entry.after["version"] == 3
    assert {r.status for r in template_load_builtin()} == {"unchanged"}


@pytest.mark.django_db
def test_reload_with_a_newer_file_version_takes_it(builtin_copy: Path) -> None:
    path = builtin_copy / "baseline.yaml"
    text = path.read_text(encoding="utf-8").replace("version: 2", "version: 5", 1)
    path.write_text(text.replace("threshold: 500", "threshold: 400", 1), encoding="utf-8")
    reports = {r.key: r for r in template_load_builtin(directory=builtin_copy)}
    assert (reports["baseline"].status, reports["baseline"].version) == ("updated", 5)
    assert TemplateCriterion.objects.get(template__key="baseline", key="latency_p99").threshold == 400


@pytest.mark.django_db
def test_malformed_data_file_names_file_and_criterion_and_changes_nothing(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text(BAD_KIND, encoding="utf-8")
    with pytest.raises(TemplateDataError, match=r"broken\.yaml: criterion 'oddity': kind: .*hunch"):
        template_load_builtin(directory=tmp_path)
    assert not Template.objects.filter(key="broken").exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("criterion", "message"),
    [
        ("{key: x, title: X, dimension: product, kind: metric, metric: m, op: '>='}", "constraint"),
        ("{key: x, title: X, dimension: product, kind: attestation, colour: red}", "unknown field"),
        ("{key: X-1, title: X, dimension: product, kind: attestation}", "key"),
    ],
)
def test_malformed_criterion_is_rejected(tmp_path: Path, criterion: str, message: str) -> None:
    (tmp_path / "odd.yaml").write_text(
        f"key: odd\nname: Odd\nversion: 1\ncriteria:\n  - {criterion}\n", encoding="utf-8"
    )
    with pytest.raises(TemplateDataError, match=rf"(?i)odd\.yaml: criterion .*{message}"):
        template_load_builtin(directory=tmp_path)


# --- Applying a template --------------------------------------------------------------------------


def test_apply_copies_the_template_criteria_into_the_project(cast) -> None:
    baseline = Template.objects.get(key="baseline")
    report = template_apply(project=cast.project, template=baseline, actor=cast.admin)

    template_criteria = criteria_of("baseline")
    assert report.added == [c.key for c in template_criteria]
    assert (report.unchanged, report.differences, report.version) == ([], [], 2)
    copied = {c.key: c for c in Criterion.objects.filter(project=cast.project)}
    for source in template_criteria:
        criterion = copied[source.key]
        assert criterion.source_template == baseline and criterion.position == source.position
        assert criterion_definition_dict(criterion) == criterion_definition_dict(source)
    assert AppliedTemplate.objects.get(project=cast.project, template=baseline).version == 2
    created = AuditEntry.objects.filter(action="criterion.create", project=cast.project)
    assert created.count() == len(template_criteria)
    assert {e.actor_label for e in created} == {"admin"}
    assert AuditEntry.objects.filter(action="template.apply", project=cast.project).count() == 1


def test_second_apply_adds_nothing(cast) -> None:
    template = Template.objects.get(key="ml_test_score")
    template_apply(project=cast.project, template=template)
    entries = AuditEntry.objects.count()

    report = template_apply(project=cast.project, template=template)

    assert (report.added, report.differences) == ([], [])
    assert len(report.unchanged) == 28
    assert Criterion.objects.filter(project=cast.project).count() == 28
    assert AuditEntry.objects.count() == entries


def test_reapply_adds_new_criteria_and_reports_differences_without_overwriting(cast) -> None:
    baseline = Template.objects.get(key="baseline")
    template_apply(project=cast.project, template=baseline)
    TemplateCriterion.objects.filter(template=baseline, key="latency_p99").update(
        threshold=250, warn_threshold=200
    )
    TemplateCriterion.objects.create(
        template=baseline,
        key="sbom",
        title="An SBOM is published",
        dimension="security",
        kind="attestation",
        position=99,
    )
    Template.objects.filter(pk=baseline.pk).update(version=3)

    report = template_apply(project=cast.project, template=baseline, actor_label="import")

    assert report.added == ["sbom"]
    assert report.differences == [("latency_p99", ["threshold", "warn_threshold"])]
    assert report.version == 3
    latency = Criterion.objects.get(project=cast.project, key="latency_p99")
    assert (latency.threshold, latency.warn_threshold) == (500, 300)
    assert AppliedTemplate.objects.get(project=cast.project, template=baseline).version == 3
    entry = AuditEntry.objects.get(action="criterion.create", object_repr__startswith="sbom")
    assert (entry.actor_label, entry.project) == ("import", cast.project)


def test_apply_keeps_a_project_criterion_with_the_same_key(cast) -> None:
    own = MetricCriterionFactory(project=cast.project, key="latency_p99", threshold=300)
    report = template_apply(project=cast.project, template=Template.objects.get(key="baseline"))
    assert "latency_p99" not in report.added
    assert {"threshold", "warn_threshold"} <= set(dict(report.differences)["latency_p99"])
    own.refresh_from_db()
    assert (own.threshold, own.source_template) == (300, None)


def test_apply_never_deletes_a_project_criterion(cast) -> None:
    eu = Template.objects.get(key="eu_ai_act_high_risk")
    own = AttestationCriterionFactory(project=cast.project, key="sbom")
    template_apply(project=cast.project, template=eu)
    TemplateCriterion.objects.filter(template=eu, key="conformity_assessment").delete()

    report = template_apply(project=cast.project, template=eu)

    assert report.added == [] and "conformity_assessment" not in report.unchanged
    keys = set(Criterion.objects.filter(project=cast.project).values_list("key", flat=True))
    assert keys == {own.key, *EU_AI_ACT_KEYS}


# --- Definitions as data --------------------------------------------------------------------------


@pytest.mark.django_db
def test_definition_dict_is_short_ordered_and_writes_utc_times() -> None:
    drift = TemplateCriterion.objects.get(template__key="baseline", key="drift")
    data = criterion_definition_dict(drift)
    assert list(data) == [name for name in template_definition_fields() if name in data]
    assert data["reference_start"] == "2026-01-01T00:00:00Z"
    # Defaults and empty values are left out: severity blocker, labels {}, min_samples 1, no op.
    assert not {"severity", "labels", "min_samples", "op", "valid_for_days"} & set(data)
    assert data["stage"] == "production" and data["threshold"] == 0.2


def test_definition_fields_are_the_shared_criterion_fields() -> None:
    fields = template_definition_fields()
    assert fields[:4] == ["key", "title", "description", "dimension"]
    assert "position" not in fields and "template" not in fields and "project" not in fields


# --- The command ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_command_prints_one_line_per_template() -> None:
    TemplateCriterion.objects.filter(template__key="ml_test_score", key="mlts_monitoring_1").delete()
    out = StringIO()
    call_command("readiness_templates", stdout=out)
    assert out.getvalue().splitlines() == [
        "baseline v2: unchanged",
        "eu_ai_act_high_risk v1: unchanged",
        "ml_test_score v2: updated",
    ]


@pytest.mark.django_db
def test_command_fails_with_a_clear_message_on_a_bad_data_file(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text(BAD_KIND, encoding="utf-8")
    with pytest.raises(CommandError, match=r"broken\.yaml: criterion 'oddity'"):
        call_command("readiness_templates", directory=tmp_path, stdout=StringIO())


def test_baseline_availability_takes_probes_and_prometheus_and_reapplying_reports_it(cast) -> None:
    """PRODUCT.md §8: pushed health.up must not pass the baseline's availability. A database from
    before provenance (baseline v1, availability of any source) is brought up to v2 by the command,
    and re-applying the template reports the project's own definition as different, without touching it."""
    baseline = Template.objects.get(key="baseline")
    availability = TemplateCriterion.objects.filter(template=baseline, key="availability")
    assert availability.get().sources == ["probe", "prometheus"]
    template_apply(project=cast.project, template=baseline)
    TemplateCriterion.objects.filter(template=baseline, key="availability").update(sources=[])
    Template.objects.filter(pk=baseline.pk).update(version=1)
    Criterion.objects.filter(project=cast.project, key="availability").update(sources=[])
    AppliedTemplate.objects.filter(project=cast.project, template=baseline).update(version=1)

    out = StringIO()
    call_command("readiness_templates", stdout=out)

    assert "baseline v2: updated" in out.getvalue().splitlines()
    assert availability.get().sources == ["probe", "prometheus"]
    report = template_apply(project=cast.project, template=Template.objects.get(pk=baseline.pk))
    assert (report.version, report.differences) == (2, [("availability", ["sources"])])
    assert Criterion.objects.get(project=cast.project, key="availability").sources == []
