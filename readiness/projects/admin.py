"""Teams, projects and project API tokens in the admin console (PRODUCT.md §5 "/admin/").

A project's page gathers what an admin sets up for it: criteria, health checks and notification
channels inline, and its stage history. Stage changes and tokens go through the services, so they are
recorded and audit-logged exactly like everywhere else.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.http import HttpRequest

from readiness.alerts.admin import ChannelInline
from readiness.audit.services import audit_record, audit_snapshot
from readiness.projects.models import (
    OWNER_FIELDS,
    Project,
    ProjectToken,
    StageChange,
    Team,
    TokenScope,
)
from readiness.projects.services import project_create, project_set_stage, token_create, token_revoke
from readiness.scoring.admin.criteria import CriterionInline, criteria_formset_save
from readiness.scoring.models import Criterion, Decision, Scorecard
from readiness.scoring.services import scorecard_refresh
from readiness.telemetry.admin import HealthCheckInline


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "member_count", "project_count")
    search_fields = ("slug", "name")
    prepopulated_fields = {"slug": ("name",)}
    filter_horizontal = ("members",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Team]:
        return (
            super()
            .get_queryset(request)
            .annotate(
                member_count=Count("members", distinct=True),
                project_count=Count("projects", distinct=True),
            )
        )

    @admin.display(description="members", ordering="member_count")
    def member_count(self, obj: Team) -> int:
        return obj.member_count

    @admin.display(description="projects", ordering="project_count")
    def project_count(self, obj: Team) -> int:
        return obj.project_count


class StageChangeInline(admin.TabularInline):
    """The stage history, read-only: it is written by ``project_set_stage`` when the stage changes."""

    model = StageChange
    fields = ("from_stage", "to_stage", "changed_at", "changed_by")
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name = "stage change"
    verbose_name_plural = "stage history"

    def get_queryset(self, request: HttpRequest) -> QuerySet[StageChange]:
        return super().get_queryset(request).select_related("changed_by")

    def has_add_permission(self, request: HttpRequest, obj: Project | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Project | None = None) -> bool:
        return False


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = (
        "slug",
        "name",
        "team",
        "stage",
        "risk_tier",
        "target_date",
        "latest_decision",
    )
    list_filter = ("stage", "risk_tier", "team")
    search_fields = ("slug", "name", "description", "team__name")
    list_select_related = ("team",)
    prepopulated_fields = {"slug": ("name",)}
    autocomplete_fields = ("team", *OWNER_FIELDS.values())
    readonly_fields = ("created_at", "stage_changed_at")
    fieldsets = (
        (None, {"fields": ("slug", "name", "description", "team")}),
        ("Lifecycle", {"fields": (("stage", "risk_tier"), "target_date")}),
        ("Responsible people", {"fields": tuple(OWNER_FIELDS.values())}),
        (
            "Decision rules",
            {
                "fields": ("require_signoff_for_pilot", "definitions"),
                "description": "definitions: per-dimension override of the definition of done, e.g. "
                '{"engineering": "..."}; a dimension left out keeps the default statement.',
            },
        ),
        ("History", {"fields": (("created_at", "stage_changed_at"),)}),
    )
    inlines = [CriterionInline, HealthCheckInline, ChannelInline, StageChangeInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Project]:
        # The newest decision as a correlated subquery: one query for the whole page, however many
        # projects it lists (the scorecard_project_latest index answers each lookup).
        newest = Scorecard.objects.latest_for(OuterRef("pk"))
        return super().get_queryset(request).annotate(latest_decision=Subquery(newest.values("decision")[:1]))

    @admin.display(description="latest decision", ordering="latest_decision")
    def latest_decision(self, obj: Project) -> str | None:
        return Decision(obj.latest_decision).label if obj.latest_decision else None

    def has_delete_permission(self, request: HttpRequest, obj: Project | None = None) -> bool:
        # Projects are retired, not deleted: deleting one would take its scorecards (which the app
        # never deletes, PRODUCT.md §1), its audit trail's context and every metric point with it.
        return False

    def save_model(self, request: HttpRequest, obj: Project, form: Any, change: bool) -> None:
        # A JSON field emptied in the form is None, which the column refuses: empty means no overrides.
        obj.definitions = obj.definitions or {}
        if not change:
            project_create(project=obj, by=request.user)
            return
        stored = Project.objects.get(pk=obj.pk)
        new_stage = obj.stage
        # The stage moves through project_set_stage, which records the stage history and its own
        # audit entry; every other field is saved here and audited as one "project.update".
        obj.stage = stored.stage
        super().save_model(request, obj, form, change)
        before, after = audit_snapshot(stored), audit_snapshot(obj)
        if before != after:
            audit_record(
                action="project.update",
                instance=obj,
                actor=request.user,
                project=obj,
                before=before,
                after=after,
            )
        project_set_stage(project=obj, stage=new_stage, by=request.user)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        if formset.model is Criterion:
            criteria_formset_save(request=request, formset=formset)
        else:
            super().save_formset(request, form, formset, change)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        # Stage, risk tier, sign-off rule and owners all change the decision: store it now rather
        # than leave the list showing yesterday's. (Criterion edits already re-evaluated.)
        if not change or form.has_changed():
            scorecard_refresh(project=form.instance)


class RevokedFilter(admin.SimpleListFilter):
    title = "revoked"
    parameter_name = "revoked"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[ProjectToken]) -> QuerySet[ProjectToken]:
        if self.value() in ("yes", "no"):
            return queryset.filter(revoked_at__isnull=self.value() == "no")
        return queryset


class ProjectTokenCreateForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=TokenScope.choices,
        widget=forms.CheckboxSelectMultiple,
        help_text="metrics:write pushes metrics, scorecard:read reads scorecards and the gate, "
        "attest attests criteria (as an automated system).",
    )

    class Meta:
        model = ProjectToken
        fields = ("project", "name", "scopes")


# What a token's page shows once it exists; never hashed_secret.
TOKEN_VIEW_FIELDS = (
    "project",
    "name",
    "hint",
    "scope_list",
    "created_at",
    "created_by",
    "last_used_at",
    "revoked_at",
)


@admin.register(ProjectToken)
class ProjectTokenAdmin(admin.ModelAdmin):
    """A token is created here (its secret shown once), then only looked at or revoked."""

    list_display = (
        "project",
        "name",
        "hint",
        "scope_list",
        "created_at",
        "last_used_at",
        "revoked",
    )
    list_display_links = ("name",)
    list_filter = (RevokedFilter, "project")
    search_fields = ("name", "hint", "project__slug")
    list_select_related = ("project",)
    autocomplete_fields = ("project",)
    actions = ["revoke_selected"]

    @admin.display(description="scopes")
    def scope_list(self, obj: ProjectToken) -> str:
        return ", ".join(obj.scopes)

    @admin.display(description="revoked", boolean=True, ordering="revoked_at")
    def revoked(self, obj: ProjectToken) -> bool:
        return obj.is_revoked

    def get_fieldsets(self, request: HttpRequest, obj: ProjectToken | None = None) -> Any:
        fields = ProjectTokenCreateForm.Meta.fields if obj is None else TOKEN_VIEW_FIELDS
        return [(None, {"fields": fields})]

    def get_readonly_fields(self, request: HttpRequest, obj: ProjectToken | None = None) -> Any:
        return () if obj is None else TOKEN_VIEW_FIELDS

    def get_form(
        self, request: HttpRequest, obj: ProjectToken | None = None, **kwargs: Any
    ) -> type[forms.ModelForm]:
        if obj is None:
            kwargs["form"] = ProjectTokenCreateForm
        return super().get_form(request, obj, **kwargs)

    def has_change_permission(self, request: HttpRequest, obj: ProjectToken | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: ProjectToken | None = None) -> bool:
        # Revoking keeps the token's row (and its last use) for the record; deleting would not.
        return False

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.change_{opts.model_name}")

    def save_form(self, request: HttpRequest, form: Any, change: bool) -> ProjectToken:
        data = form.cleaned_data
        token, secret = token_create(
            project=data["project"],
            name=data["name"],
            scopes=list(data["scopes"]),
            created_by=request.user,
        )
        # The only moment the secret exists outside its owner's hands: only its hash is stored.
        messages.success(request, f"Copy this token now, it will not be shown again: {secret}")
        return token

    def save_model(self, request: HttpRequest, obj: ProjectToken, form: Any, change: bool) -> None:
        pass  # token_create saved it (and audit-logged it) in save_form

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        pass  # nothing is related, and the form never saved the token itself

    @admin.action(description="Revoke selected tokens", permissions=["revoke"])
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet[ProjectToken]) -> None:
        tokens = list(queryset.filter(revoked_at__isnull=True).select_related("project"))
        for token in tokens:
            token_revoke(token=token, by=request.user)
        noun = "token" if len(tokens) == 1 else "tokens"
        self.message_user(request, f"Revoked {len(tokens)} {noun}.", messages.SUCCESS)
