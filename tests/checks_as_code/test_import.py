from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError

from readiness.alerts.models import Channel
from readiness.audit.models import AuditEntry
from readiness.checks_as_code.apply import checks_import
from readiness.checks_as_code.checkers import ChecksInvalid
from readiness.checks_as_code.criteria import CHECKERS
from readiness.projects.models import Project, StageChange
from readiness.scoring.models import AppliedTemplate, Criterion, Template, TemplateCriterion
from readiness.scoring.templates import template_definition_fields
from readiness.telemetry.models import HealthCheck
from tests.checks_as_code.conftest import FRAUD_YAML, db_snapshot, run_command
from tests.conftest import Cast
from tests.factories import AttestationCriterionFactory

pytestmark = pytest.mark.usefixtures("people")


def criteria_of(document: dict[str, Any]) -> list[dict[str, Any]]:
    return document["projects"][0]["criteria"]


# --- The example of PRODUCT.md §6 -----------------------------------------------------------------


def test_product_example_imports() -> None:
    result = run_command("readiness_import", str(FRAUD_YAML))

    project = Project.objects.get(slug="fraud-detector")
    assert (project.name, project.team.slug, project.stage, project.risk_tier) == (
        "Fraud detector",
        "fraud",
        "pilot",
        "high",
    )
    assert str(project.target_date) == "2027-03-01"
    assert project.owner_usernames() == {
        "data_science": "alice",
        "engineering": "bob",
        "product": "carol",
        "security": "dave",
    }
    assert sorted(project.team.members.values_list("username", flat=True)) == [
        "alice",
        "bob",
        "carol",
        "dave",
    ]
    baseline = TemplateCriterion.objects.filter(template__key="baseline").count()
    assert project.criteria.count() == baseline + 1  # pen_test overrides baseline's; p99_latency is new
    p99 = project.criteria.get(key="p99_latency")
    assert (p99.metric, p99.aggregation, p99.window, p99.op) == ("latency_ms", "p99", "24h", "<=")
    assert (p99.threshold, p99.warn_threshold, p99.stage, p99.title) == (
        300,
        250,
        "production",
        "P99 latency",
    )
    pen_test = project.criteria.get(key="pen_test")
    assert (pen_test.valid_for_days, pen_test.evidence_required) == (365, True)
    assert pen_test.source_template.key == "baseline"
    assert AppliedTemplate.objects.filter(project=project, template__key="baseline").exists()
    check = HealthCheck.objects.get(project=project)
    assert (check.name, check.url, check.timeout, check.interval) == (
        "api",
        "http://127.0.0.1:9000/healthz",
        2,
        30,
    )
    assert sorted((c.kind, c.url, tuple(c.to)) for c in Channel.objects.filter(project=project)) == [
        ("email", "", ("ml-ops@example.com",)),
        ("webhook", "https://hooks.example.com/T000/B000", ()),
    ]
    alice = get_user_model().objects.get(username="alice")
    assert (alice.email, alice.get_full_name(), alice.has_usable_password()) == (
        "alice@example.com",
        "Alice Moreau",
        False,
    )
    assert "+ project fraud-detector" in result.stdout
    assert "+ fraud-detector.criteria.p99_latency" in result.stdout
    assert "+ team fraud" in result.stdout


def test_new_project_starts_its_stage_history() -> None:
    run_command("readiness_import", str(FRAUD_YAML))
    project = Project.objects.get(slug="fraud-detector")
    assert [(c.from_stage, c.to_stage) for c in StageChange.objects.filter(project=project)] == [
        ("", "pilot")
    ]


def test_importing_twice_reports_no_changes() -> None:
    run_command("readiness_import", str(FRAUD_YAML))
    before = db_snapshot()

    second = run_command("readiness_import", str(FRAUD_YAML))

    assert "No changes" in second.stdout
    assert not [line for line in second.stdout.splitlines() if line[:1] in "+~"]
    assert "= team fraud unchanged" in second.stdout
    assert db_snapshot() == before


def test_import_audits_criteria_with_before_and_after(fraud: dict, write_yaml: Callable) -> None:
    run_command("readiness_import", write_yaml(fraud))
    criteria_of(fraud)[0]["threshold"] = 350

    result = run_command("readiness_import", write_yaml(fraud))

    assert "~ fraud-detector.criteria.p99_latency: threshold 300 → 350" in result.stdout
    assert "0 created, 1 updated" in result.stdout
    entry = AuditEntry.objects.get(action="criterion.update")
    assert (entry.actor_label, entry.before["threshold"], entry.after["threshold"]) == ("import", 300, 350)
    assert AuditEntry.objects.filter(
        action="criterion.create", object_repr__startswith="p99_latency"
    ).exists()


def test_team_members_become_exactly_the_listed(cast: Cast) -> None:
    assert cast.project.team.members.filter(username="mia").exists()

    result = run_command("readiness_import", str(FRAUD_YAML))

    assert "~ team fraud: members -mia" in result.stdout
    assert sorted(cast.project.team.members.values_list("username", flat=True)) == [
        "alice",
        "bob",
        "carol",
        "dave",
    ]


def test_stage_change_through_import_records_stage_change(fraud: dict, write_yaml: Callable) -> None:
    run_command("readiness_import", write_yaml(fraud))
    fraud["projects"][0]["stage"] = "production"

    result = run_command("readiness_import", write_yaml(fraud))

    assert "~ project fraud-detector: stage pilot → production" in result.stdout
    project = Project.objects.get(slug="fraud-detector")
    assert project.stage == "production"
    last = StageChange.objects.filter(project=project).last()
    assert (last.from_stage, last.to_stage) == ("pilot", "production")
    assert AuditEntry.objects.filter(action="project.stage", actor_label="import").exists()


def test_override_of_template_criterion_merges_over_its_definition(fraud: dict, write_yaml: Callable) -> None:
    criteria_of(fraud)[1] = {"key": "pen_test", "valid_for_days": 90}

    run_command("readiness_import", write_yaml(fraud))

    pen_test = Criterion.objects.get(project__slug="fraud-detector", key="pen_test")
    template = TemplateCriterion.objects.get(template__key="baseline", key="pen_test")
    assert pen_test.valid_for_days == 90
    assert (pen_test.title, pen_test.stage, pen_test.kind) == (template.title, template.stage, "attestation")


def test_null_clears_a_template_value(fraud: dict, write_yaml: Callable) -> None:
    criteria_of(fraud).append({"key": "latency_p99", "warn_threshold": None, "severity": "advisory"})

    run_command("readiness_import", write_yaml(fraud))

    latency = Criterion.objects.get(project__slug="fraud-detector", key="latency_p99")
    assert (latency.warn_threshold, latency.severity) == (None, "advisory")


def test_criteria_not_in_file_are_kept_and_reported(fraud: dict, write_yaml: Callable) -> None:
    run_command("readiness_import", write_yaml(fraud))
    project = Project.objects.get(slug="fraud-detector")
    AttestationCriterionFactory(project=project, key="red_team")

    result = run_command("readiness_import", write_yaml(fraud))

    assert "? fraud-detector.criteria.red_team: not in file (kept)" in result.stdout
    assert project.criteria.filter(key="red_team").exists()


def test_channel_digest_mode_is_set_changed_and_kept_when_omitted(fraud: dict, write_yaml: Callable) -> None:
    fraud["projects"][0]["channels"][0]["digest"] = True
    run_command("readiness_import", write_yaml(fraud))
    webhook = Channel.objects.get(project__slug="fraud-detector", kind="webhook")
    assert webhook.digest and not Channel.objects.get(project__slug="fraud-detector", kind="email").digest

    del fraud["projects"][0]["channels"][0]["digest"]
    assert "unchanged" in run_command("readiness_import", write_yaml(fraud)).stdout
    webhook.refresh_from_db()
    assert webhook.digest  # a file that does not say keeps the mode

    fraud["projects"][0]["channels"][0]["digest"] = False
    result = run_command("readiness_import", write_yaml(fraud))
    webhook.refresh_from_db()
    assert not webhook.digest
    assert "digest → False" in result.stdout
    assert Channel.objects.filter(project__slug="fraud-detector").count() == 2


def test_omitted_project_fields_are_left_as_they_are(fraud: dict, write_yaml: Callable) -> None:
    run_command("readiness_import", write_yaml(fraud))
    for key in ("stage", "risk_tier", "target_date", "owners"):
        del fraud["projects"][0][key]

    result = run_command("readiness_import", write_yaml(fraud))

    project = Project.objects.get(slug="fraud-detector")
    assert (project.stage, project.risk_tier, str(project.target_date)) == ("pilot", "high", "2027-03-01")
    assert project.owner_usernames()["security"] == "dave"
    assert "= project fraud-detector unchanged" in result.stdout


def test_project_changes_are_reported_and_audited(fraud: dict, write_yaml: Callable) -> None:
    run_command("readiness_import", write_yaml(fraud))
    project = fraud["projects"][0]
    project["owners"]["security"] = "carol"
    project["risk_tier"] = "limited"
    project["definitions"] = {"product": "Analysts use it daily."}

    result = run_command("readiness_import", write_yaml(fraud))

    assert (
        "~ project fraud-detector: risk_tier high → limited, "
        'definitions none → {"product": "Analysts use it daily."}, owners.security dave → carol'
    ) in result.stdout
    saved = Project.objects.get(slug="fraud-detector")
    assert saved.owner_usernames()["security"] == "carol"
    assert saved.definition("product") == "Analysts use it daily."
    entry = AuditEntry.objects.get(action="project.update")
    assert (entry.before["risk_tier"], entry.after["risk_tier"]) == ("high", "limited")


def test_newer_template_version_adds_criteria_and_reports_differences(
    fraud: dict, write_yaml: Callable
) -> None:
    run_command("readiness_import", write_yaml(fraud))
    template = Template.objects.get(key="baseline")
    TemplateCriterion.objects.create(
        template=template, key="model_registry", title="Model is registered", dimension="data_science",
        kind="attestation", position=99,
    )  # fmt: skip
    TemplateCriterion.objects.filter(template=template, key="error_rate").update(threshold=0.5)
    TemplateCriterion.objects.filter(template=template, key="pen_test").update(valid_for_days=30)
    Template.objects.filter(pk=template.pk).update(version=3)

    result = run_command("readiness_import", write_yaml(fraud))

    assert "~ fraud-detector.templates.baseline v2 → v3: 1 criteria added" in result.stdout
    assert "+ fraud-detector.criteria.model_registry (from baseline)" in result.stdout
    assert (
        "! fraud-detector.criteria.error_rate differs from baseline v3 (threshold); "
        "the project's definition is kept"
    ) in result.stdout
    # pen_test is defined in the file: its difference from the template is intended, not news.
    assert "criteria.pen_test differs" not in result.stdout
    assert Criterion.objects.get(project__slug="fraud-detector", key="error_rate").threshold != 0.5
    assert AppliedTemplate.objects.get(project__slug="fraud-detector", template=template).version == 3


def test_dry_run_prints_changes_and_changes_nothing() -> None:
    before = db_snapshot()

    result = run_command("readiness_import", str(FRAUD_YAML), "--dry-run")

    assert "+ project fraud-detector" in result.stdout
    assert "+ fraud-detector.criteria.p99_latency" in result.stdout
    assert result.stdout.rstrip().endswith("Dry run: nothing was applied")
    assert db_snapshot() == before


def test_dry_run_reports_exactly_what_the_import_does(fraud: dict, write_yaml: Callable) -> None:
    run_command("readiness_import", write_yaml(fraud))
    fraud["projects"][0]["stage"] = "production"
    criteria_of(fraud)[0]["window"] = "1h"
    path = write_yaml(fraud)

    dry = run_command("readiness_import", path, "--dry-run")
    real = run_command("readiness_import", path)

    assert dry.stdout.replace("Dry run: nothing was applied\n", "") == real.stdout
    assert "~ fraud-detector.criteria.p99_latency: window 24h → 1h" in real.stdout


def test_import_evaluates_the_changed_projects(django_capture_on_commit_callbacks: Any) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        # Nothing changed: nothing to evaluate.
        checks_import(document={"projects": []}, dry_run=False, actor=None)
        report = checks_import(document=_load_fraud(), dry_run=False, actor=None)
    assert report.changed_projects == ["fraud-detector"]
    assert Project.objects.get(slug="fraud-detector").scorecards.count() == 1


def _load_fraud() -> dict[str, Any]:
    from readiness.checks_as_code.loader import document_load

    return document_load(FRAUD_YAML.read_text(encoding="utf-8"))


# --- Invalid files --------------------------------------------------------------------------------


def _set(path: list[Any], value: Any) -> Callable[[dict], None]:
    def mutate(document: dict) -> None:
        target = document
        for part in path[:-1]:
            target = target[part]
        if isinstance(target, list) and path[-1] == len(target):
            target.append(value)
        else:
            target[path[-1]] = value

    return mutate


def _del(path: list[Any]) -> Callable[[dict], None]:
    def mutate(document: dict) -> None:
        target = document
        for part in path[:-1]:
            target = target[part]
        del target[path[-1]]

    return mutate


P = ["projects", 0]
C = [*P, "criteria", 0]
INVALID_CASES = [
    ("unknown top-level key", _set(["colour"], "red"), "colour", "unknown key"),
    ("unknown project key", _set([*P, "colour"], "red"), "projects[0].colour", "unknown key"),
    (
        "unknown criterion key",
        _set([*C, "treshold"], 1),
        "projects[0].criteria[0].treshold",
        "did you mean 'threshold'",
    ),
    ("unknown owners key", _set([*P, "owners", "legal"], "alice"), "projects[0].owners.legal", "unknown key"),
    (
        "unknown health check key",
        _set([*P, "health_checks", 0, "headers"], {}),
        "projects[0].health_checks[0].headers",
        "unknown key",
    ),
    ("unknown user key", _set(["users", 0, "password"], "x"), "users[0].password", "unknown key"),
    ("bad op", _set([*C, "op"], "<"), "projects[0].criteria[0].op", "expected one of >=, <="),
    ("bad aggregation", _set([*C, "aggregation"], "p98"), "projects[0].criteria[0].aggregation", "p98"),
    ("bad stage", _set([*P, "stage"], "beta"), "projects[0].stage", "unknown value 'beta'"),
    ("bad risk tier", _set([*P, "risk_tier"], "extreme"), "projects[0].risk_tier", "unknown value"),
    ("string threshold", _set([*C, "threshold"], "300"), "projects[0].criteria[0].threshold", "got string"),
    ("boolean threshold", _set([*C, "threshold"], True), "projects[0].criteria[0].threshold", "got boolean"),
    (
        "infinite threshold",
        _set([*C, "threshold"], float("inf")),
        "projects[0].criteria[0].threshold",
        "finite",
    ),
    (
        "unknown owner",
        _set([*P, "owners", "security"], "zed"),
        "projects[0].owners.security",
        "unknown user 'zed'",
    ),
    ("unknown member", _set(["teams", 0, "members", 3], "zed"), "teams[0].members[3]", "unknown user 'zed'"),
    ("unknown team", _set([*P, "team"], "payments"), "projects[0].team", "unknown team 'payments'"),
    (
        "duplicate criterion key",
        _set([*P, "criteria", 1, "key"], "p99_latency"),
        "projects[0].criteria[1].key",
        "duplicate criterion key",
    ),
    ("window without unit", _set([*C, "window"], "24"), "projects[0].criteria[0].window", "like 15m, 24h"),
    ("zero window", _set([*C, "window"], "0h"), "projects[0].criteria[0].window", "not valid"),
    (
        "window longer than data is kept",
        _set([*C, "window"], "401d"),
        "projects[0].criteria[0].window",
        "window 401d is longer than the 400d that metric data is kept (READINESS_ROLLUP_RETENTION_DAYS)",
    ),
    (
        "unknown template",
        _set([*P, "templates", 0], "iso_42001"),
        "projects[0].templates[0]",
        "unknown template",
    ),
    (
        "non-http health check",
        _set([*P, "health_checks", 0, "url"], "ftp://127.0.0.1/healthz"),
        "projects[0].health_checks[0].url",
        "http:// or https://",
    ),
    (
        "health check too often",
        _set([*P, "health_checks", 0, "interval"], 10),
        "projects[0].health_checks[0].interval",
        "must be at least 30",
    ),
    (
        "metric without threshold",
        _set([*C, "threshold"], None),
        "projects[0].criteria[0].threshold",
        "required",
    ),
    (
        "warn band on the failing side",
        _set([*C, "warn_threshold"], 400),
        "projects[0].criteria[0].warn_threshold",
        "at most threshold 300",
    ),
    (
        "bad email recipient",
        _set([*P, "channels", 1, "to", 0], "ml-ops"),
        "projects[0].channels[1].to[0]",
        "email",
    ),
    ("bad user email", _set(["users", 0, "email"], "alice@"), "users[0].email", "not a valid email"),
    (
        "bad username",
        _set(["users", 1], {"username": "eve smith"}),
        "users[1].username",
        "not a valid username",
    ),
    ("bad metric name", _set([*C, "metric"], "Latency-ms"), "projects[0].criteria[0].metric", "not valid"),
    ("bad target date", _set([*P, "target_date"], "soon"), "projects[0].target_date", "expected a date"),
    ("criteria not a list", _set([*P, "criteria"], {"key": "x"}), "projects[0].criteria", "expected a list"),
    (
        "new criterion without kind",
        _set([*P, "criteria", 1], {"key": "red_team", "dimension": "security"}),
        "projects[0].criteria[1].kind",
        "required",
    ),
    ("project without team", _del([*P, "team"]), "projects[0].team", "required"),
    (
        "health check without url",
        _del([*P, "health_checks", 0, "url"]),
        "projects[0].health_checks[0].url",
        "required",
    ),
    ("criterion without key", _del([*C, "key"]), "projects[0].criteria[0].key", "required"),
    ("webhook without url", _del([*P, "channels", 0, "url"]), "projects[0].channels[0].url", "required"),
    (
        "channel digest not a boolean",
        _set([*P, "channels", 0, "digest"], "daily"),
        "projects[0].channels[0].digest",
        "expected true or false",
    ),
    (
        "email channel with a url",
        _set([*P, "channels", 1, "url"], "https://x.example.com"),
        "projects[0].channels[1].url",
        "not used by email channels",
    ),
    (
        "duplicate health check",
        _set([*P, "health_checks", 1], {"name": "api", "url": "http://127.0.0.1:9001/"}),
        "projects[0].health_checks[1].name",
        "duplicate health check name",
    ),
    (
        "drift reference period backwards",
        _set(
            [*P, "criteria", 1],
            {
                "key": "score_drift",
                "dimension": "data_science",
                "kind": "drift",
                "metric": "score",
                "method": "psi",
                "window": "7d",
                "reference_start": "2026-02-01T00:00:00Z",
                "reference_end": "2026-01-01T00:00:00Z",
            },
        ),
        "projects[0].criteria[1].reference_end",
        "must be after reference_start",
    ),
    (
        "timeout zero",
        _set([*P, "health_checks", 0, "timeout"], 0),
        "projects[0].health_checks[0].timeout",
        "at least",
    ),
    (
        "min_samples zero",
        _set([*C, "min_samples"], 0),
        "projects[0].criteria[0].min_samples",
        "must be at least 1",
    ),
    (
        "sources with an unknown kind",
        _set([*C, "sources"], ["probe", "carrier"]),
        "projects[0].criteria[0].sources[1]",
        "expected one of push, otlp, probe, prometheus, mlflow",
    ),
    (
        "sources not a list",
        _set([*C, "sources"], "probe"),
        "projects[0].criteria[0].sources",
        "expected a list of source kinds",
    ),
    (
        "a source kind twice",
        _set([*C, "sources"], ["probe", "prometheus", "probe"]),
        "projects[0].criteria[0].sources[2]",
        "probe is listed twice",
    ),
    (
        "sources on an attestation",
        _set([*P, "criteria", 1, "sources"], ["probe"]),
        "projects[0].criteria[1].sources",
        "an attestation has no sources",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "path", "message"),
    [case[1:] for case in INVALID_CASES],
    ids=[case[0] for case in INVALID_CASES],
)
def test_invalid_file_is_refused_with_its_path_and_changes_nothing(
    fraud: dict, write_yaml: Callable, mutate: Callable, path: str, message: str
) -> None:
    mutate(fraud)
    file = write_yaml(fraud)
    before = db_snapshot()

    with pytest.raises(CommandError, match="1 error; nothing was applied"):
        run_command("readiness_import", file)

    assert db_snapshot() == before
    with pytest.raises(ChecksInvalid) as refused:
        checks_import(document=fraud, dry_run=False, actor=None)
    assert [p for p, _ in refused.value.errors] == [path]
    assert message in refused.value.errors[0][1]


def test_every_error_is_printed_as_path_and_message(
    fraud: dict, write_yaml: Callable, capsys: pytest.CaptureFixture
) -> None:
    criteria_of(fraud)[0]["op"] = "=="
    criteria_of(fraud)[0]["threshold"] = "300"
    fraud["projects"][0]["owners"]["security"] = "zed"
    fraud["projects"][0]["health_checks"][0]["interval"] = 5
    fraud["teams"][0]["colour"] = "blue"
    file = write_yaml(fraud)
    before = db_snapshot()

    with pytest.raises(CommandError) as refused:
        from io import StringIO

        from django.core.management import call_command

        err = StringIO()
        call_command("readiness_import", file, stdout=StringIO(), stderr=err)

    assert str(refused.value).endswith("5 errors; nothing was applied")
    lines = err.getvalue().splitlines()
    assert [line.split(":", 1)[0] for line in lines] == [
        "teams[0].colour",
        "projects[0].owners.security",
        "projects[0].criteria[0].op",
        "projects[0].criteria[0].threshold",
        "projects[0].health_checks[0].interval",
    ]
    assert db_snapshot() == before


def test_yaml_syntax_error_names_line_and_column(write_yaml: Callable) -> None:
    file = write_yaml("projects:\n  - slug: fraud-detector\n    name: [unclosed\n")
    with pytest.raises(CommandError, match=r"line \d+, column \d+"):
        run_command("readiness_import", file)


def test_repeated_yaml_key_is_a_syntax_error(write_yaml: Callable) -> None:
    file = write_yaml("teams:\n  - slug: fraud\n    name: Fraud\n    name: Payments\n")
    with pytest.raises(
        CommandError, match=r"line 4, column 5: found duplicate key 'name' \(first on line 3\)"
    ):
        run_command("readiness_import", file)


def test_missing_file_is_a_clear_error() -> None:
    with pytest.raises(CommandError, match=r"cannot read /nonexistent/checks\.yaml"):
        run_command("readiness_import", "/nonexistent/checks.yaml")


def test_every_criterion_field_can_be_written_in_a_file() -> None:
    # A field added to CriterionDefinition needs a checker, or its export could not be imported.
    assert set(CHECKERS) == set(template_definition_fields())


def test_document_that_is_not_a_mapping_is_refused() -> None:
    with pytest.raises(ChecksInvalid) as refused:
        checks_import(document=["projects"], dry_run=False, actor=None)
    assert refused.value.errors == [("document", "expected a mapping, got list")]
