"""Admin console: what judges criteria (attestations, waivers) and the history it leaves (sign-offs,
scorecards), read-only where the app never edits."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString

from readiness.audit.admin import ReadOnlyModelAdmin, pretty_json
from readiness.scoring.models import (
    Attestation,
    Criterion,
    Kind,
    Scorecard,
    SignOff,
    Waiver,
)
from readiness.scoring.services import (
    ActionConflict,
    attestation_create,
    waiver_approve,
    waiver_reject,
)

# --- Attestations and waivers ----------------------------------------------------------------------


class AttestationCriterionField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Criterion) -> str:
        return f"{obj.project.slug} · {obj.key} — {obj.title}"


class AttestationCreateForm(forms.ModelForm):
    criterion = AttestationCriterionField(
        queryset=Criterion.objects.filter(kind=Kind.ATTESTATION).select_related("project")
    )

    class Meta:
        model = Attestation
        fields = ("criterion", "evidence_url", "note")

    def clean(self) -> dict[str, Any]:
        # The same rules attestation_create enforces, caught here so they show on the form.
        cleaned = super().clean()
        criterion, url = cleaned.get("criterion"), cleaned.get("evidence_url")
        if url and not url.startswith(("http://", "https://")):
            self.add_error("evidence_url", "The evidence link must be an http(s) URL.")
        elif criterion is not None and criterion.evidence_required and not url:
            self.add_error("evidence_url", f"{criterion.key} requires an evidence link.")
        return cleaned


@admin.register(Attestation)
class AttestationAdmin(admin.ModelAdmin):
    """Attestations are evidence: an admin may add one (as themself), nobody edits or deletes one."""

    list_display = ("criterion_key", "project", "by", "automated", "evidence", "attested_at")
    list_filter = ("automated", "criterion__dimension", "criterion__project")
    search_fields = (
        "criterion__key",
        "criterion__project__slug",
        "attested_by__username",
        "token__name",
        "note",
    )
    list_select_related = ("criterion__project", "attested_by", "token")
    date_hierarchy = "attested_at"
    fields = ("criterion", "attested_by", "token", "automated", "evidence_url", "note", "attested_at")

    @admin.display(description="criterion", ordering="criterion__key")
    def criterion_key(self, obj: Attestation) -> str:
        return obj.criterion.key

    @admin.display(description="project", ordering="criterion__project__slug")
    def project(self, obj: Attestation) -> str:
        return obj.criterion.project.slug

    @admin.display(description="evidence")
    def evidence(self, obj: Attestation) -> SafeString | str:
        if not obj.evidence_url:
            return "—"
        return format_html('<a href="{}" rel="noopener noreferrer">link</a>', obj.evidence_url)

    def has_change_permission(self, request: HttpRequest, obj: Attestation | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Attestation | None = None) -> bool:
        return False

    def get_form(
        self, request: HttpRequest, obj: Attestation | None = None, change: bool = False, **kwargs: Any
    ) -> type[forms.ModelForm]:
        if obj is None:
            kwargs["form"] = AttestationCreateForm
            kwargs["fields"] = AttestationCreateForm.Meta.fields
        return super().get_form(request, obj, change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Attestation | None = None) -> Any:
        return AttestationCreateForm.Meta.fields if obj is None else self.fields

    def save_form(self, request: HttpRequest, form: Any, change: bool) -> Attestation:
        data = form.cleaned_data
        return attestation_create(
            criterion=data["criterion"],
            by=request.user,
            evidence_url=data["evidence_url"],
            note=data["note"],
        )

    def save_model(self, request: HttpRequest, obj: Attestation, form: Any, change: bool) -> None:
        pass  # attestation_create saved it (and audit-logged it) in save_form

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        pass  # nothing is related, and the form never saved the object itself


@admin.register(Waiver)
class WaiverAdmin(admin.ModelAdmin):
    """Waivers are requested by project members (pages, API); the console decides them in bulk."""

    list_display = (
        "criterion_key",
        "project",
        "status_display",
        "requested_by",
        "approved_by",
        "expires_at",
        "requested_at",
    )
    list_filter = ("status", "criterion__dimension", "criterion__project")
    search_fields = ("criterion__key", "criterion__project__slug", "reason", "requested_by__username")
    list_select_related = ("criterion__project", "requested_by", "approved_by")
    date_hierarchy = "requested_at"
    actions = ["approve_selected", "reject_selected"]

    @admin.display(description="criterion", ordering="criterion__key")
    def criterion_key(self, obj: Waiver) -> str:
        return obj.criterion.key

    @admin.display(description="project", ordering="criterion__project__slug")
    def project(self, obj: Waiver) -> str:
        return obj.criterion.project.slug

    @admin.display(description="status", ordering="status")
    def status_display(self, obj: Waiver) -> str:
        return obj.display_status

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Waiver | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Waiver | None = None) -> bool:
        return False

    def has_decide_permission(self, request: HttpRequest) -> bool:
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.change_{opts.model_name}")

    @admin.action(description="Approve selected waivers", permissions=["decide"])
    def approve_selected(self, request: HttpRequest, queryset: QuerySet[Waiver]) -> None:
        self._decide(request, queryset, waiver_approve, "Approved")

    @admin.action(description="Reject selected waivers", permissions=["decide"])
    def reject_selected(self, request: HttpRequest, queryset: QuerySet[Waiver]) -> None:
        self._decide(request, queryset, waiver_reject, "Rejected")

    def _decide(
        self,
        request: HttpRequest,
        queryset: QuerySet[Waiver],
        decide: Callable[..., Waiver],
        verb: str,
    ) -> None:
        # One waiver refused (the admin's own, or already decided) does not stop the others: each
        # decision is its own transaction inside the service.
        decided = 0
        for waiver in queryset.select_related("criterion__project"):
            label = f"{waiver.criterion.project.slug} · {waiver.criterion.key}"
            try:
                decide(waiver=waiver, by=request.user)
            except PermissionDenied as exc:
                self.message_user(request, f"{label}: {exc}", messages.ERROR)
            except ValidationError as exc:
                self.message_user(request, f"{label}: {'; '.join(exc.messages)}", messages.ERROR)
            except ActionConflict as exc:
                self.message_user(request, f"{label}: {exc}", messages.ERROR)
            else:
                decided += 1
        if decided:
            noun = "waiver" if decided == 1 else "waivers"
            self.message_user(request, f"{verb} {decided} {noun}.", messages.SUCCESS)


# --- History ---------------------------------------------------------------------------------------


@admin.register(SignOff)
class SignOffAdmin(ReadOnlyModelAdmin):
    list_display = ("project", "dimension", "signed_by", "signed_at", "scorecard_decision")
    list_filter = ("dimension", "project")
    search_fields = ("project__slug", "signed_by__username", "note")
    list_select_related = ("project", "signed_by", "scorecard")
    date_hierarchy = "signed_at"

    @admin.display(description="decision when signed", ordering="scorecard__decision")
    def scorecard_decision(self, obj: SignOff) -> str | None:
        return obj.scorecard.get_decision_display() if obj.scorecard is not None else None


@admin.register(Scorecard)
class ScorecardAdmin(ReadOnlyModelAdmin):
    list_display = ("project", "target", "decision", "computed_at", "is_decision_change")
    list_filter = ("decision", "target", "project")
    search_fields = ("project__slug", "project__name")
    list_select_related = ("project",)
    date_hierarchy = "computed_at"
    fields = (
        "project",
        "target",
        "decision",
        "previous_decision",
        "computed_at",
        "digest",
        "payload_pretty",
    )
    readonly_fields = ("payload_pretty",)

    @admin.display(description="decision change", boolean=True)
    def is_decision_change(self, obj: Scorecard) -> bool:
        return obj.is_decision_change

    @admin.display(description="payload")
    def payload_pretty(self, obj: Scorecard) -> SafeString:
        return pretty_json(obj.payload)
