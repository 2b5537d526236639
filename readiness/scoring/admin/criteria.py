"""Admin console: criteria and the templates they are copied from."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db import transaction
from django.db.models import Count, QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest
from django.utils import timezone

from readiness.audit.services import audit_record, audit_snapshot
from readiness.scoring.models import (
    Criterion,
    Kind,
    Template,
    TemplateCriterion,
)
from readiness.scoring.services import (
    criterion_delete,
    criterion_save,
)

# --- Criterion definitions (shared by project criteria and template criteria) ----------------------

# The fields each kind needs. The database enforces the same rule (CriterionDefinition's check
# constraints); checking it here names the missing field instead of a violated constraint.
REQUIRED_BY_KIND: dict[str, tuple[str, ...]] = {
    Kind.METRIC: ("metric", "aggregation", "op", "threshold", "window"),
    Kind.DRIFT: ("metric", "method", "window", "reference_start", "reference_end"),
}

DEFINITION_FIELDSETS: tuple[tuple[str | None, dict[str, Any]], ...] = (
    (
        None,
        {
            "fields": (
                ("key", "position"),
                "title",
                "description",
                ("dimension", "kind"),
                ("severity", "stage"),
                "remediation",
            )
        },
    ),
    (
        "Measurement (metric and drift criteria)",
        {
            "description": "Metric criteria use the aggregation, op and thresholds; drift criteria "
            "use the method, the reference period and the threshold.",
            "fields": (
                ("metric", "window"),
                ("labels", "sources"),
                ("aggregation", "op"),
                ("threshold", "warn_threshold", "min_samples"),
                ("method", "reference_start", "reference_end"),
            ),
        },
    ),
    ("Attestation criteria", {"fields": (("evidence_required", "valid_for_days"),)}),
)


class CriterionDefinitionForm(forms.ModelForm):
    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        # A JSON field emptied in the form would be NULL, which the column refuses.
        if "labels" in self.fields and cleaned.get("labels") is None:
            cleaned["labels"] = {}
        if "sources" in self.fields and cleaned.get("sources") is None:
            cleaned["sources"] = []
        if "not_applicable_reason" in self.fields:
            # NULL means applicable; an empty text area must not mark a criterion not applicable.
            cleaned["not_applicable_reason"] = (cleaned.get("not_applicable_reason") or "").strip() or None
        kind = cleaned.get("kind")
        for name in REQUIRED_BY_KIND.get(kind, ()):
            if name in self.fields:
                if not self.has_error(name) and cleaned.get(name) in (None, ""):
                    self.add_error(name, f"A {kind} criterion needs a {name}.")
            elif getattr(self.instance, name) in (None, ""):
                # The compact inline lacks drift fields: those criteria are edited on their own page.
                self.add_error(None, f"A {kind} criterion needs a {name}: add it from the Criteria page.")
        # A backwards reference period is refused by the model's own clean(), run by the form.
        return cleaned


# --- Templates -------------------------------------------------------------------------------------


class TemplateCriterionInline(admin.StackedInline):
    model = TemplateCriterion
    form = CriterionDefinitionForm
    fieldsets = DEFINITION_FIELDSETS
    extra = 0


def _template_state(template_pk: int) -> dict[str, Any]:
    template = Template.objects.get(pk=template_pk)
    return {
        "template": audit_snapshot(template),
        "criteria": {c.key: audit_snapshot(c) for c in template.criteria.all()},
    }


def _template_diff(
    before: dict[str, Any] | None, after: dict[str, Any]
) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """Keep the template and only the criteria that were added, changed or removed."""
    if before is None:
        return None, after
    keys = before["criteria"].keys() | after["criteria"].keys()
    changed = sorted(k for k in keys if before["criteria"].get(k) != after["criteria"].get(k))
    return (
        {"template": before["template"], "criteria": {k: before["criteria"].get(k) for k in changed}},
        {"template": after["template"], "criteria": {k: after["criteria"].get(k) for k in changed}},
    )


@admin.register(Template)
class TemplateAdmin(admin.ModelAdmin):
    list_display = ("key", "name", "version", "builtin", "criteria_count", "updated_at")
    list_filter = ("builtin",)
    search_fields = ("key", "name", "description")
    fields = ("key", "name", "description", "version", "builtin", "updated_at")
    # Built-in templates come from Readiness's data files; the refresh command owns that flag.
    readonly_fields = ("builtin", "updated_at")
    inlines = [TemplateCriterionInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Template]:
        return super().get_queryset(request).annotate(criteria_count=Count("criteria"))

    @admin.display(description="criteria", ordering="criteria_count")
    def criteria_count(self, obj: Template) -> int:
        return obj.criteria_count

    def has_delete_permission(self, request: HttpRequest, obj: Template | None = None) -> bool:
        # A built-in template would come back with the next refresh; edit it instead.
        if obj is not None and obj.builtin:
            return False
        return super().has_delete_permission(request, obj)

    def save_model(self, request: HttpRequest, obj: Template, form: Any, change: bool) -> None:
        # The state before the save, for the audit entry written once the inline criteria are saved.
        obj._audit_before = _template_state(obj.pk) if change else None  # type: ignore[attr-defined]
        super().save_model(request, obj, form, change)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        template = form.instance
        if change and not (form.has_changed() or any(fs.has_changed() for fs in formsets)):
            return
        # Saving bumps updated_at only: versions are the data files' business (re-applying reports
        # differences by version), so an edit here never renumbers a template.
        template.updated_at = timezone.now()
        Template.objects.filter(pk=template.pk).update(updated_at=template.updated_at)
        before, after = _template_diff(template._audit_before, _template_state(template.pk))
        audit_record(
            action="template.update" if change else "template.create",
            instance=template,
            actor=request.user,
            before=before,
            after=after,
        )

    def delete_model(self, request: HttpRequest, obj: Template) -> None:
        with transaction.atomic():
            audit_record(
                action="template.delete",
                instance=obj,
                actor=request.user,
                before=_template_state(obj.pk),
            )
            obj.delete()

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Template]) -> None:
        for template in queryset:
            self.delete_model(request, template)


# --- Criteria --------------------------------------------------------------------------------------


class NotApplicableFilter(admin.SimpleListFilter):
    title = "not applicable"
    parameter_name = "not_applicable"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Criterion]) -> QuerySet[Criterion]:
        if self.value() in ("yes", "no"):
            return queryset.filter(not_applicable_reason__isnull=self.value() == "no")
        return queryset


def criteria_formset_save(*, request: HttpRequest, formset: BaseInlineFormSet) -> None:
    """Save a project's inline criteria one by one through ``criterion_save``, so each is audited."""
    formset.save(commit=False)
    changed = [obj for obj, _fields in formset.changed_objects]
    before = {c.pk: audit_snapshot(c) for c in Criterion.objects.filter(pk__in=[c.pk for c in changed])}
    for criterion in formset.deleted_objects:
        criterion_delete(criterion=criterion, actor=request.user)
    for criterion in [*formset.new_objects, *changed]:
        criterion.updated_at = timezone.now()
        criterion.save()
        criterion_save(
            criterion=criterion,
            actor=request.user,
            created=criterion.pk not in before,
            before=before.get(criterion.pk),
        )
    formset.save_m2m()


class CriterionInline(admin.TabularInline):
    """The compact view of a project's criteria; the full definition is one click away."""

    model = Criterion
    form = CriterionDefinitionForm
    fields = (
        "key",
        "title",
        "dimension",
        "kind",
        "severity",
        "stage",
        "metric",
        "aggregation",
        "window",
        "op",
        "threshold",
        "warn_threshold",
    )
    extra = 0
    show_change_link = True
    # Deleting happens on the criterion's own page, where the admin sees the attestations and waivers
    # that would go with it (and is refused, being unable to delete that history).
    can_delete = False


CRITERION_FIELDSETS = (
    (None, {"fields": ("project", *DEFINITION_FIELDSETS[0][1]["fields"])}),
    *DEFINITION_FIELDSETS[1:],
    (
        "Not applicable",
        {
            "description": "A reason here marks the criterion not applicable; leave empty otherwise.",
            "fields": ("not_applicable_reason",),
        },
    ),
    ("Provenance", {"fields": (("source_template", "updated_at"),)}),
)


@admin.register(Criterion)
class CriterionAdmin(admin.ModelAdmin):
    form = CriterionDefinitionForm
    list_display = (
        "project",
        "key",
        "title",
        "dimension",
        "kind",
        "severity",
        "stage",
        "is_not_applicable",
    )
    list_display_links = ("key",)
    list_filter = ("dimension", "kind", "severity", "stage", NotApplicableFilter, "project")
    search_fields = ("key", "title", "metric", "project__slug", "project__name")
    list_select_related = ("project",)
    autocomplete_fields = ("project",)
    readonly_fields = ("source_template", "updated_at")
    fieldsets = CRITERION_FIELDSETS

    @admin.display(description="N/A", boolean=True, ordering="not_applicable_reason")
    def is_not_applicable(self, obj: Criterion) -> bool:
        return obj.not_applicable_reason is not None

    def save_model(self, request: HttpRequest, obj: Criterion, form: Any, change: bool) -> None:
        if change and not form.has_changed():
            return
        before = audit_snapshot(Criterion.objects.get(pk=obj.pk)) if change else None
        obj.updated_at = timezone.now()
        super().save_model(request, obj, form, change)
        criterion_save(criterion=obj, actor=request.user, created=not change, before=before)

    def delete_model(self, request: HttpRequest, obj: Criterion) -> None:
        criterion_delete(criterion=obj, actor=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Criterion]) -> None:
        for criterion in queryset.select_related("project"):
            criterion_delete(criterion=criterion, actor=request.user)
