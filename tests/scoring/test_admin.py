"""The admin console (PRODUCT.md §5 "/admin/"): every page loads for an admin and nobody else gets in;
what an admin changes there goes through the services, so it is audited exactly like everywhere else."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from readiness.alerts.models import Channel, Delivery, DeliveryAttempt, DeliveryItem, Event
from readiness.audit.models import AuditEntry
from readiness.audit.services import audit_record
from readiness.projects.models import OWNER_FIELDS, Project, ProjectToken, StageChange, hash_token_secret
from readiness.projects.services import token_create
from readiness.scoring.models import (
    Criterion,
    Scorecard,
    SignOff,
    Template,
    TemplateCriterion,
    Waiver,
)
from readiness.telemetry.models import HealthCheck, IngestBatch, MetricSource
from tests.conftest import Cast
from tests.factories import (
    AttestationCriterionFactory,
    AttestationFactory,
    MetricCriterionFactory,
    MetricPointFactory,
    ProjectFactory,
    WaiverFactory,
)

# Every model the console shows, ours and Django's alike (users, groups, beat schedules).
REGISTERED = sorted(f"{model._meta.app_label}_{model._meta.model_name}" for model in admin.site._registry)
OURS = [
    name
    for name in REGISTERED
    if name.split("_")[0] in {"projects", "scoring", "telemetry", "alerts", "audit"}
]


def scorecard(project: Project, decision: str, *, minutes_ago: int = 0) -> Scorecard:
    return Scorecard.objects.create(
        project=project,
        target="production",
        decision=decision,
        computed_at=timezone.now() - timedelta(minutes=minutes_ago),
        digest=f"{decision}-{minutes_ago}",
        payload={"project": project.slug, "decision": decision},
    )


@pytest.fixture
def console(client: Client, cast: Cast) -> Client:
    client.force_login(cast.admin)
    return client


@pytest.fixture
def one_of_each(cast: Cast) -> None:
    """A row in every table the console lists, so each list column is actually rendered."""
    project = cast.project
    metric = MetricCriterionFactory(project=project, key="latency_p99")
    attested = AttestationCriterionFactory(project=project, key="threat_model")
    AttestationFactory(criterion=attested, attested_by=cast.security)
    WaiverFactory(criterion=metric, requested_by=cast.engineering)
    card = scorecard(project, "no_go")
    SignOff.objects.create(
        project=project, dimension="security", signed_by=cast.security, digest="d", scorecard=card
    )
    token_create(project=project, name="ci", scopes=["metrics:write"], created_by=cast.admin)
    HealthCheck.objects.create(
        project=project, name="api", url="https://fraud.example.com/health", last_up=True
    )
    MetricSource.objects.create(
        project=project,
        name="prod-prometheus",
        kind="prometheus",
        url="http://127.0.0.1:9090",
        queries={"latency_ms": "up"},
        failing_since=timezone.now(),
        last_error="connection refused",
    )
    Channel.objects.create(
        project=project, kind="webhook", url="https://hooks.example.com/x", last_error="HTTP 410"
    )
    Channel.objects.create(project=project, kind="email", to=["ops@example.com"])
    # A notification: its event, its delivery to the email channel and one attempt (all read-only).
    event = Event.objects.create(project=project, kind="decision_changed", key="decision:1", summary="no_go")
    delivery = Delivery.objects.create(channel=Channel.objects.get(kind="email"), state="sent", attempts=1)
    DeliveryItem.objects.create(delivery=delivery, event=event, channel=delivery.channel)
    DeliveryAttempt.objects.create(delivery=delivery, number=1, outcome="sent")
    MetricPointFactory(project=project)
    IngestBatch.objects.create(
        id=uuid.uuid4(), project=project, body_sha256="0" * 64, accepted=1, state="failed", error="refused"
    )
    template = Template.objects.create(key="house-rules", name="House rules")
    TemplateCriterion.objects.create(
        template=template, key="runbook", title="Runbook", dimension="engineering", kind="attestation"
    )
    StageChange.objects.create(
        project=project, from_stage="prototype", to_stage="pilot", changed_by=cast.admin
    )
    Group.objects.get_or_create(name="reviewers")


# --- Every page loads -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", REGISTERED)
def test_every_changelist_loads(console: Client, one_of_each: None, name: str) -> None:
    response = console.get(reverse(f"admin:{name}_changelist"))
    assert response.status_code == 200


@pytest.mark.parametrize("name", OURS)
def test_every_object_page_loads(console: Client, one_of_each: None, name: str) -> None:
    model = next(m for m in admin.site._registry if f"{m._meta.app_label}_{m._meta.model_name}" == name)
    obj = model._default_manager.first()
    response = console.get(reverse(f"admin:{name}_change", args=[obj.pk]))
    assert response.status_code == 200


# What is written only by services or by the people concerned, never added from the console.
NOT_ADDED_IN_CONSOLE = {
    "scoring_waiver",
    "scoring_signoff",
    "scoring_scorecard",
    "telemetry_metricpoint",
    "telemetry_ingestbatch",
    "audit_auditentry",
    "alerts_event",
    "alerts_delivery",
}


@pytest.mark.parametrize("name", OURS)
def test_add_page_loads_unless_added_elsewhere(console: Client, name: str) -> None:
    response = console.get(reverse(f"admin:{name}_add"))
    assert response.status_code == (403 if name in NOT_ADDED_IN_CONSOLE else 200)


def test_project_changelist_shows_the_newest_decision(console: Client, cast: Cast) -> None:
    scorecard(cast.project, "no_go", minutes_ago=60)
    scorecard(cast.project, "go", minutes_ago=1)
    undecided = ProjectFactory(slug="no-scorecard-yet")
    response = console.get(reverse("admin:projects_project_changelist"))
    decisions = {p.slug: p.latest_decision for p in response.context["cl"].result_list}
    assert decisions == {"fraud-detector": "go", undecided.slug: None}


def test_project_changelist_queries_do_not_grow_with_projects(
    console: Client, cast: Cast, django_assert_max_num_queries: Any
) -> None:
    def add_projects(n: int) -> None:
        for _ in range(n):
            project = ProjectFactory()
            scorecard(project, "no_go", minutes_ago=5)
            scorecard(project, "go")

    url = reverse("admin:projects_project_changelist")
    add_projects(2)  # with the cast's project: 3
    with django_assert_max_num_queries(8) as few:
        assert console.get(url).status_code == 200
    add_projects(27)
    with django_assert_max_num_queries(8) as many:
        response = console.get(url)
    assert len(response.context["cl"].result_list) == 30
    assert len(many.captured_queries) == len(few.captured_queries)


# --- Who gets in ------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["leader", "member", "outsider", "engineering"])
def test_non_staff_are_sent_to_the_admin_login(client: Client, cast: Cast, who: str) -> None:
    client.force_login(getattr(cast, who))
    for url in (reverse("admin:index"), reverse("admin:projects_project_changelist")):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))


def test_anonymous_visitors_are_sent_to_the_admin_login(client: Client, db: None) -> None:
    response = client.get(reverse("admin:scoring_waiver_changelist"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


# --- History is read-only ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["scoring_signoff", "scoring_scorecard", "audit_auditentry"])
def test_history_cannot_be_added(console: Client, name: str) -> None:
    assert console.get(reverse(f"admin:{name}_add")).status_code == 403
    assert console.post(reverse(f"admin:{name}_add"), {}).status_code == 403


@pytest.mark.parametrize("name", ["scoring_signoff", "scoring_scorecard", "audit_auditentry"])
def test_history_cannot_be_changed_or_deleted(console: Client, cast: Cast, name: str) -> None:
    card = scorecard(cast.project, "no_go")
    objects = {
        "scoring_scorecard": card,
        "scoring_signoff": SignOff.objects.create(
            project=cast.project, dimension="product", signed_by=cast.product, digest="d", scorecard=card
        ),
        "audit_auditentry": audit_record(action="project.update", instance=cast.project, actor=cast.admin),
    }
    obj = objects[name]
    assert console.get(reverse(f"admin:{name}_change", args=[obj.pk])).status_code == 200  # view only
    assert console.post(reverse(f"admin:{name}_change", args=[obj.pk]), {}).status_code == 403
    assert console.get(reverse(f"admin:{name}_delete", args=[obj.pk])).status_code == 403
    assert type(obj).objects.filter(pk=obj.pk).exists()


# --- Projects ---------------------------------------------------------------------------------------


def project_form(console: Client, project: Project, **changes: Any) -> dict[str, Any]:
    """The project's change form as the browser would post it back, with ``changes`` applied."""
    url = reverse("admin:projects_project_change", args=[project.pk])
    response = console.get(url)
    data: dict[str, Any] = {
        "slug": project.slug,
        "name": project.name,
        "description": project.description,
        "team": project.team_id,
        "stage": project.stage,
        "risk_tier": project.risk_tier,
        "target_date": project.target_date or "",
        "definitions": "{}",
        "initial-definitions": "{}",  # the hidden initial Django renders for a field with a callable default
        **{field: getattr(project, f"{field}_id") or "" for field in OWNER_FIELDS.values()},
    }
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        assert formset.model is StageChange or not formset.initial_forms, "post back only empty inlines"
        data |= {
            f"{formset.prefix}-TOTAL_FORMS": formset.initial_form_count(),
            f"{formset.prefix}-INITIAL_FORMS": formset.initial_form_count(),
            f"{formset.prefix}-MIN_NUM_FORMS": 0,
            f"{formset.prefix}-MAX_NUM_FORMS": 1000,
        }
    return {**data, **changes}


def test_stage_change_in_the_console_records_history_and_audit(console: Client, cast: Cast) -> None:
    url = reverse("admin:projects_project_change", args=[cast.project.pk])
    response = console.post(url, project_form(console, cast.project, stage="production"))
    assert response.status_code == 302, response.context["adminform"].form.errors
    cast.project.refresh_from_db()
    assert cast.project.stage == "production"
    change = StageChange.objects.get(project=cast.project)
    assert (change.from_stage, change.to_stage, change.changed_by) == ("pilot", "production", cast.admin)
    entry = AuditEntry.objects.get(action="project.stage")
    assert (entry.before, entry.after, entry.actor) == (
        {"stage": "pilot"},
        {"stage": "production"},
        cast.admin,
    )
    # Only the stage changed: no separate project.update entry.
    assert not AuditEntry.objects.filter(action="project.update").exists()
    # The decision is re-evaluated for the new target at once.
    assert Scorecard.objects.get(project=cast.project).target == "production"


def test_other_project_changes_are_audited_with_before_and_after(console: Client, cast: Cast) -> None:
    url = reverse("admin:projects_project_change", args=[cast.project.pk])
    response = console.post(url, project_form(console, cast.project, risk_tier="prohibited"))
    assert response.status_code == 302
    entry = AuditEntry.objects.get(action="project.update")
    assert (entry.before["risk_tier"], entry.after["risk_tier"]) == ("high", "prohibited")
    assert entry.project == cast.project and entry.actor == cast.admin
    assert not StageChange.objects.exists()
    assert Scorecard.objects.get(project=cast.project).decision == "no_go"


def test_project_cannot_be_deleted_only_retired(console: Client, cast: Cast) -> None:
    response = console.get(reverse("admin:projects_project_delete", args=[cast.project.pk]))
    assert response.status_code == 403


def test_project_created_in_the_console_starts_its_history(console: Client, cast: Cast) -> None:
    data: dict[str, Any] = {
        "slug": "churn-model",
        "name": "Churn model",
        "team": cast.project.team_id,
        "stage": "prototype",
        "risk_tier": "limited",
        "definitions": "{}",
        "initial-definitions": "{}",
    }
    for prefix in ("criteria", "health_checks", "channels", "stage_changes"):
        data |= {f"{prefix}-TOTAL_FORMS": 0, f"{prefix}-INITIAL_FORMS": 0}
    response = console.post(reverse("admin:projects_project_add"), data)
    assert response.status_code == 302
    project = Project.objects.get(slug="churn-model")
    start = StageChange.objects.get(project=project)
    assert (start.from_stage, start.to_stage, start.changed_by) == ("", "prototype", cast.admin)
    assert AuditEntry.objects.get(action="project.create").after["slug"] == "churn-model"
    assert Scorecard.objects.filter(project=project).exists()


def test_criterion_added_inline_is_audited(console: Client, cast: Cast) -> None:
    url = reverse("admin:projects_project_change", args=[cast.project.pk])
    data = project_form(console, cast.project)
    data |= {
        "criteria-TOTAL_FORMS": 1,
        "criteria-0-key": "latency_p99",
        "criteria-0-title": "p99 latency",
        "criteria-0-dimension": "engineering",
        "criteria-0-kind": "metric",
        "criteria-0-severity": "blocker",
        "criteria-0-stage": "pilot",
        "criteria-0-metric": "latency_ms",
        "criteria-0-aggregation": "p99",
        "criteria-0-window": "24h",
        "criteria-0-op": "<=",
        "criteria-0-threshold": "300",
        "criteria-0-warn_threshold": "",
    }
    response = console.post(url, data)
    assert response.status_code == 302
    criterion = Criterion.objects.get(project=cast.project, key="latency_p99")
    assert criterion.not_applicable_reason is None
    entry = AuditEntry.objects.get(action="criterion.create")
    assert entry.after["key"] == "latency_p99" and entry.actor == cast.admin


def new_metric_criterion(cast: Cast, **fields: object) -> dict[str, object]:
    """The admin's add form for a p99 latency criterion of the cast's project, with ``fields`` on top."""
    return {
        "project": cast.project.pk,
        "key": "latency_p99",
        "title": "p99 latency",
        "dimension": "engineering",
        "kind": "metric",
        "severity": "blocker",
        "stage": "pilot",
        "position": 0,
        "labels": "{}",
        "min_samples": 1,
        "metric": "latency_ms",
    } | fields


def test_incomplete_metric_criterion_is_a_form_error(console: Client, cast: Cast) -> None:
    data = new_metric_criterion(cast, window="24h", op="<=")
    response = console.post(reverse("admin:scoring_criterion_add"), data)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert set(errors) == {"aggregation", "threshold"}
    assert not Criterion.objects.exists()


def test_window_longer_than_data_is_kept_is_a_form_error(console: Client, cast: Cast) -> None:
    data = new_metric_criterion(cast, window="401d", aggregation="p99", op="<=", threshold="300")
    response = console.post(reverse("admin:scoring_criterion_add"), data)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert set(errors) == {"window"}
    assert "longer than the 400d that metric data is kept" in errors["window"][0]
    assert not Criterion.objects.exists()


def test_criterion_edit_is_audited_and_keeps_it_applicable(console: Client, cast: Cast) -> None:
    criterion = MetricCriterionFactory(project=cast.project, key="latency_p99", threshold=300.0)
    data = {
        "project": cast.project.pk,
        "key": "latency_p99",
        "title": criterion.title,
        "dimension": "engineering",
        "kind": "metric",
        "severity": "blocker",
        "stage": "pilot",
        "position": 0,
        "labels": "{}",
        "min_samples": 1,
        "metric": "latency_ms",
        "window": "24h",
        "aggregation": "p99",
        "op": "<=",
        "threshold": "250",
        "not_applicable_reason": "  ",
    }
    response = console.post(reverse("admin:scoring_criterion_change", args=[criterion.pk]), data)
    assert response.status_code == 302
    criterion.refresh_from_db()
    assert criterion.threshold == 250.0 and criterion.not_applicable_reason is None
    entry = AuditEntry.objects.get(action="criterion.update")
    assert (entry.before["threshold"], entry.after["threshold"]) == (300.0, 250.0)


@pytest.mark.parametrize(
    ("sources", "stored", "error"),
    [
        ('["probe", "prometheus"]', ["probe", "prometheus"], None),
        ("", [], None),  # emptied: every kind
        ('["probe", "pigeon"]', None, "unknown source kind 'pigeon'"),
        ('"probe"', None, "must be a list of source kinds"),
        ('["probe", "probe"]', None, "lists a source kind twice"),
    ],
)
def test_criterion_sources_are_edited_in_the_console(
    console: Client, cast: Cast, sources: str, stored: list[str] | None, error: str | None
) -> None:
    criterion = MetricCriterionFactory(project=cast.project, key="uptime", metric="health.up", threshold=0.99)
    data = {
        "project": cast.project.pk,
        "key": "uptime",
        "title": criterion.title,
        "dimension": "engineering",
        "kind": "metric",
        "severity": "blocker",
        "stage": "pilot",
        "position": 0,
        "labels": "{}",
        "sources": sources,
        "min_samples": 1,
        "metric": "health.up",
        "window": "24h",
        "aggregation": "mean",
        "op": ">=",
        "threshold": "0.99",
    }
    response = console.post(reverse("admin:scoring_criterion_change", args=[criterion.pk]), data)
    criterion.refresh_from_db()
    if error is None:
        assert response.status_code == 302
        assert criterion.sources == stored
    else:
        assert response.status_code == 200
        assert error in " ".join(response.context["adminform"].form.errors["sources"])
        assert criterion.sources == [] and criterion.aggregation == "p99"  # nothing changed


# --- Tokens -----------------------------------------------------------------------------------------


def database_text() -> str:
    """Every row of every table, as text: what a leaked secret would have to hide in."""
    rows: list[str] = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608 -- table names from introspection
            rows.extend(str(row) for row in cursor.fetchall())
    return "\n".join(rows)


def test_token_created_in_the_console_shows_its_secret_once_and_stores_its_hash(
    console: Client, cast: Cast
) -> None:
    response = console.post(
        reverse("admin:projects_projecttoken_add"),
        {"project": cast.project.pk, "name": "ci-deploy", "scopes": ["scorecard:read", "metrics:write"]},
        follow=True,
    )
    assert response.status_code == 200
    shown = [
        m.group(1)
        for message in response.context["messages"]
        if (m := re.fullmatch(r"Copy this token now, it will not be shown again: (rdy_\S+)", str(message)))
    ]
    assert len(shown) == 1
    secret = shown[0]
    token = ProjectToken.objects.get(project=cast.project, name="ci-deploy")
    assert token.hashed_secret == hash_token_secret(secret) != secret
    assert token.scopes == ["metrics:write", "scorecard:read"] and token.created_by == cast.admin
    assert AuditEntry.objects.filter(action="token.create").exists()
    assert not any(secret in f"{e.object_repr} {e.before} {e.after}" for e in AuditEntry.objects.all())
    assert secret not in database_text()
    # Never again: neither the list nor the token's page shows it, nor its hash.
    for url in (
        reverse("admin:projects_projecttoken_changelist"),
        reverse("admin:projects_projecttoken_change", args=[token.pk]),
    ):
        page = console.get(url).content.decode()
        assert secret not in page and token.hashed_secret not in page


@pytest.mark.parametrize(
    "data",
    [
        {"name": "ci", "scopes": []},
        {"name": "ci", "scopes": ["admin"]},
        {"name": "", "scopes": ["attest"]},
        {"name": "taken", "scopes": ["attest"]},
    ],
)
def test_token_add_form_refuses_bad_input(console: Client, cast: Cast, data: dict[str, Any]) -> None:
    token_create(project=cast.project, name="taken", scopes=["attest"])
    response = console.post(reverse("admin:projects_projecttoken_add"), {"project": cast.project.pk, **data})
    assert response.status_code == 200
    assert response.context["adminform"].form.errors
    assert ProjectToken.objects.count() == 1


def test_token_page_is_read_only(console: Client, cast: Cast) -> None:
    token, _ = token_create(project=cast.project, name="ci", scopes=["attest"])
    url = reverse("admin:projects_projecttoken_change", args=[token.pk])
    assert console.post(url, {"name": "renamed"}).status_code == 403
    assert console.get(reverse("admin:projects_projecttoken_delete", args=[token.pk])).status_code == 403


def test_revoke_action_revokes_and_audits(console: Client, cast: Cast) -> None:
    token, secret = token_create(project=cast.project, name="ci", scopes=["attest"])
    response = console.post(
        reverse("admin:projects_projecttoken_changelist"),
        {"action": "revoke_selected", "_selected_action": [token.pk]},
    )
    assert response.status_code == 302
    token.refresh_from_db()
    assert token.is_revoked and ProjectToken.objects.for_secret(secret) is None
    assert AuditEntry.objects.get(action="token.revoke").actor == cast.admin


# --- Waivers ----------------------------------------------------------------------------------------


def decide(console: Client, action: str, *waivers: Waiver) -> list[str]:
    response = console.post(
        reverse("admin:scoring_waiver_changelist"),
        {"action": action, "_selected_action": [w.pk for w in waivers]},
        follow=True,
    )
    assert response.status_code == 200
    return [str(message) for message in response.context["messages"]]


def test_admin_approves_a_waiver_someone_else_requested(console: Client, cast: Cast) -> None:
    waiver = WaiverFactory(
        criterion=MetricCriterionFactory(project=cast.project), requested_by=cast.engineering
    )
    assert decide(console, "approve_selected", waiver) == ["Approved 1 waiver."]
    waiver.refresh_from_db()
    assert (waiver.status, waiver.approved_by) == ("approved", cast.admin)
    assert AuditEntry.objects.get(action="waiver.approve").actor == cast.admin


def test_admin_rejects_a_waiver(console: Client, cast: Cast) -> None:
    waiver = WaiverFactory(
        criterion=MetricCriterionFactory(project=cast.project), requested_by=cast.engineering
    )
    assert decide(console, "reject_selected", waiver) == ["Rejected 1 waiver."]
    waiver.refresh_from_db()
    assert waiver.status == "rejected"


def test_admin_cannot_approve_their_own_waiver_but_the_others_go_through(console: Client, cast: Cast) -> None:
    criterion = MetricCriterionFactory(project=cast.project, key="latency_p99")
    own = WaiverFactory(criterion=criterion, requested_by=cast.admin)
    other = WaiverFactory(criterion=criterion, requested_by=cast.engineering)
    shown = decide(console, "approve_selected", own, other)
    assert len(shown) == 2
    assert shown[0].startswith("fraud-detector · latency_p99: ") and "own waiver" in shown[0]
    assert shown[1] == "Approved 1 waiver."
    own.refresh_from_db()
    other.refresh_from_db()
    assert (own.status, own.approved_by) == ("pending", None)
    assert other.status == "approved"
    assert not AuditEntry.objects.filter(action="waiver.approve", object_id=str(own.pk)).exists()


def test_an_already_decided_waiver_is_reported_not_redecided(console: Client, cast: Cast) -> None:
    waiver = WaiverFactory(
        criterion=MetricCriterionFactory(project=cast.project), requested_by=cast.engineering
    )
    decide(console, "reject_selected", waiver)
    shown = decide(console, "approve_selected", waiver)
    assert len(shown) == 1 and "already rejected" in shown[0]
    waiver.refresh_from_db()
    assert waiver.status == "rejected"


def test_waivers_are_decided_not_edited_in_the_console(console: Client, cast: Cast) -> None:
    waiver = WaiverFactory(
        criterion=MetricCriterionFactory(project=cast.project), requested_by=cast.engineering
    )
    assert console.get(reverse("admin:scoring_waiver_add")).status_code == 403
    assert console.post(reverse("admin:scoring_waiver_change", args=[waiver.pk]), {}).status_code == 403


# --- Attestations and templates -----------------------------------------------------------------------


def test_admin_attestation_goes_through_the_service(console: Client, cast: Cast) -> None:
    criterion = AttestationCriterionFactory(project=cast.project, key="threat_model", evidence_required=True)
    url = reverse("admin:scoring_attestation_add")
    response = console.post(url, {"criterion": criterion.pk, "evidence_url": "", "note": ""})
    assert response.status_code == 200 and "evidence_url" in response.context["adminform"].form.errors
    response = console.post(url, {"criterion": criterion.pk, "evidence_url": "https://wiki.example.com/tm"})
    assert response.status_code == 302
    attestation = criterion.attestations.get()
    assert attestation.attested_by == cast.admin and not attestation.automated
    assert AuditEntry.objects.filter(action="attestation.create").exists()


def test_template_edit_bumps_updated_at_not_version_and_is_audited(console: Client, cast: Cast) -> None:
    template = Template.objects.create(
        key="house-rules", name="House rules", updated_at=timezone.now() - timedelta(days=3)
    )
    data = {
        "key": "house-rules",
        "name": "House rules, revised",
        "description": "",
        "version": 1,
        "criteria-TOTAL_FORMS": 0,
        "criteria-INITIAL_FORMS": 0,
        "criteria-MIN_NUM_FORMS": 0,
        "criteria-MAX_NUM_FORMS": 1000,
    }
    before = template.updated_at
    response = console.post(reverse("admin:scoring_template_change", args=[template.pk]), data)
    assert response.status_code == 302
    template.refresh_from_db()
    assert template.version == 1 and template.updated_at > before
    entry = AuditEntry.objects.get(action="template.update")
    assert entry.before["template"]["name"] == "House rules"
    assert entry.after["template"]["name"] == "House rules, revised"


def test_builtin_templates_cannot_be_deleted(console: Client, cast: Cast) -> None:
    template = Template.objects.create(key="house-rules", name="House rules", builtin=True)
    assert console.get(reverse("admin:scoring_template_delete", args=[template.pk])).status_code == 403
