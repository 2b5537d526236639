"""Templates: loading the built-in ones from their data files, and applying a template to a project.

A template is copied into a project, never linked: after ``template_apply`` the project's criteria are
its own, so a team can tune a threshold without touching the template, and a newer template version
never silently changes (or deletes) what a project already checks (PRODUCT.md §1 "Template").
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from readiness.audit.services import audit_record, audit_snapshot
from readiness.projects.models import Project
from readiness.scoring.models import (
    AppliedTemplate,
    Criterion,
    CriterionDefinition,
    Template,
    TemplateCriterion,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

BUILTIN_TEMPLATES_DIR = Path(__file__).resolve().parent / "builtin_templates"
TEMPLATE_FILE_FIELDS = frozenset({"key", "name", "version", "description", "criteria"})


class TemplateDataError(ValueError):
    """A template data file is malformed; the message names the file and, when known, the criterion."""


def template_definition_fields() -> list[str]:
    """The fields that define a criterion, in declaration order: one list for the loader, the
    comparison of ``template_apply`` and the YAML export, so a new field is handled everywhere."""
    return [f.name for f in CriterionDefinition._meta.local_fields]


def _definition_values(obj: CriterionDefinition) -> dict[str, Any]:
    # labels is a dict: copy it so a copied criterion never shares (and mutates) the template's.
    return {name: copy.deepcopy(getattr(obj, name)) for name in template_definition_fields()}


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def criterion_definition_dict(obj: CriterionDefinition) -> dict[str, Any]:
    """A criterion's definition as plain data, for YAML and the audit log.

    Fields holding their default or an empty value are left out so the YAML stays short; reading it
    back gives the same criterion because a left-out field takes that default. Fields come in the
    order of ``template_definition_fields`` and datetimes as ISO 8601 in UTC with ``Z``, so the same
    criterion always gives the same text.
    """
    data: dict[str, Any] = {}
    for model_field in CriterionDefinition._meta.local_fields:
        value = getattr(obj, model_field.name)
        if value is None or value == "" or value == {} or value == []:
            continue
        if model_field.has_default() and value == model_field.get_default():
            continue
        data[model_field.name] = _iso(value) if isinstance(value, datetime) else copy.deepcopy(value)
    return data


def _differing_fields(a: CriterionDefinition, b: CriterionDefinition) -> list[str]:
    left, right = _definition_values(a), _definition_values(b)
    return [name for name in template_definition_fields() if left[name] != right[name]]


# --- Loading the built-in templates ---------------------------------------------------------------


@dataclass(frozen=True)
class TemplateFile:
    """One parsed and validated data file; ``criteria`` are unsaved, in file order."""

    path: Path
    key: str
    name: str
    description: str
    version: int
    criteria: list[TemplateCriterion]


@dataclass(frozen=True)
class TemplateLoadReport:
    key: str
    version: int
    status: str  # "created", "updated" or "unchanged"

    def __str__(self) -> str:
        return f"{self.key} v{self.version}: {self.status}"


def _error_text(exc: ValidationError) -> str:
    if not hasattr(exc, "error_dict"):
        return "; ".join(exc.messages)
    parts = []
    for name, errors in exc.message_dict.items():
        text = " ".join(errors)
        parts.append(text if name == "__all__" else f"{name}: {text}")
    return "; ".join(parts)


def template_read_file(*, path: Path) -> TemplateFile:
    """Parse one template data file and validate every criterion as the database would."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise TemplateDataError(f"{path.name}: cannot read: {exc}") from exc
    if not isinstance(data, dict):
        raise TemplateDataError(f"{path.name}: expected a mapping with key, name, version, criteria")
    unknown = sorted(set(data) - TEMPLATE_FILE_FIELDS)
    if unknown:
        raise TemplateDataError(f"{path.name}: unknown field(s) {', '.join(unknown)}")
    missing = sorted({"key", "name", "version", "criteria"} - set(data))
    if missing:
        raise TemplateDataError(f"{path.name}: missing field(s) {', '.join(missing)}")
    version = data["version"]
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise TemplateDataError(f"{path.name}: version must be a whole number >= 1, got {version!r}")
    template = Template(
        key=data["key"], name=data["name"], description=data.get("description") or "", version=version
    )
    try:
        # The stored template of the same key is the one we will update: uniqueness is not an error.
        template.full_clean(validate_unique=False)
    except ValidationError as exc:
        raise TemplateDataError(f"{path.name}: {_error_text(exc)}") from exc
    if not isinstance(data["criteria"], list) or not data["criteria"]:
        raise TemplateDataError(f"{path.name}: criteria must be a non-empty list")

    allowed = set(template_definition_fields())
    criteria: list[TemplateCriterion] = []
    seen: set[str] = set()
    for index, item in enumerate(data["criteria"]):
        where = f"{path.name}: criterion {index + 1}"
        if not isinstance(item, dict):
            raise TemplateDataError(f"{where}: expected a mapping of criterion fields")
        key = item.get("key")
        if key:
            where = f"{path.name}: criterion {key!r}"
        unknown = sorted(set(item) - allowed)
        if unknown:
            raise TemplateDataError(f"{where}: unknown field(s) {', '.join(map(str, unknown))}")
        if key in seen:
            raise TemplateDataError(f"{where}: duplicate key")
        seen.add(key)
        values = dict(item)
        for name in ("reference_start", "reference_end"):
            # A date without a zone in a data file means UTC, as every time in Readiness.
            if isinstance(values.get(name), datetime) and timezone.is_naive(values[name]):
                values[name] = values[name].replace(tzinfo=UTC)
        criterion = TemplateCriterion(position=index, **values)
        try:
            # full_clean also converts the YAML scalars to the field types (0.9 → float, dates).
            criterion.full_clean(exclude=["template"])
        except ValidationError as exc:
            raise TemplateDataError(f"{where}: {_error_text(exc)}") from exc
        criteria.append(criterion)
    return TemplateFile(
        path=path,
        key=template.key,
        name=template.name,
        description=template.description,
        version=version,
        criteria=criteria,
    )


def _template_picture(template: Template, criteria: list[TemplateCriterion]) -> dict[str, Any]:
    """What the audit log keeps of a template: enough to see what a refresh changed."""
    return {
        "name": template.name,
        "description": template.description,
        "version": template.version,
        "criteria": [criterion_definition_dict(c) for c in criteria],
    }


def _template_upsert(source: TemplateFile) -> TemplateLoadReport:
    template = Template.objects.select_for_update().filter(key=source.key).first()
    if template is None:
        template = Template.objects.create(
            key=source.key,
            name=source.name,
            description=source.description,
            version=source.version,
            builtin=True,
        )
        for criterion in source.criteria:
            criterion.template = template
        TemplateCriterion.objects.bulk_create(source.criteria)
        audit_record(
            action="template.create",
            instance=template,
            actor_label="system",
            after=_template_picture(template, source.criteria),
        )
        return TemplateLoadReport(key=template.key, version=template.version, status="created")

    stored = list(template.criteria.order_by("position", "id"))
    criteria_changed = [_definition_values(c) for c in stored] != [
        _definition_values(c) for c in source.criteria
    ]
    before = _template_picture(template, stored)
    # The version counts criteria sets: projects compare it to know whether re-applying adds
    # anything, so it rises whenever the criteria change (also when an admin edit is undone), and
    # never falls below the file's own version.
    version = max(source.version, template.version + 1 if criteria_changed else template.version)
    if (
        not criteria_changed
        and version == template.version
        and (template.name, template.description, template.builtin) == (source.name, source.description, True)
    ):
        return TemplateLoadReport(key=template.key, version=template.version, status="unchanged")

    template.name, template.description, template.builtin = source.name, source.description, True
    template.version, template.updated_at = version, timezone.now()
    template.save()
    if criteria_changed:
        template.criteria.all().delete()
        for criterion in source.criteria:
            criterion.template = template
        TemplateCriterion.objects.bulk_create(source.criteria)
    audit_record(
        action="template.update",
        instance=template,
        actor_label="system",
        before=before,
        after=_template_picture(template, source.criteria),
    )
    return TemplateLoadReport(key=template.key, version=template.version, status="updated")


def template_load_builtin(*, directory: Path | None = None) -> list[TemplateLoadReport]:
    """Create or refresh the built-in templates from their data files (idempotent).

    Every file is validated before anything is written, so one bad file leaves the database as it
    was. A template whose stored criteria differ from its file (an admin edited it, or the file
    changed) gets the file's criteria back and a higher version.
    """
    directory = directory or BUILTIN_TEMPLATES_DIR
    sources = [template_read_file(path=path) for path in sorted(directory.glob("*.yaml"))]
    owners: dict[str, Path] = {}
    for source in sources:
        if source.key in owners:
            raise TemplateDataError(
                f"{source.path.name}: template key {source.key!r} is also used by {owners[source.key].name}"
            )
        owners[source.key] = source.path
    with transaction.atomic():
        return [_template_upsert(source) for source in sources]


# --- Applying a template to a project -------------------------------------------------------------


@dataclass
class TemplateApplyReport:
    template: str
    version: int
    added: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    # Keys the project already has with another definition, and the fields that differ. The
    # project's own definition is kept: a team's tuned threshold is never overwritten.
    differences: list[tuple[str, list[str]]] = field(default_factory=list)


def template_apply(
    *,
    project: Project,
    template: Template,
    actor: AbstractBaseUser | None = None,
    actor_label: str | None = None,
) -> TemplateApplyReport:
    """Copy a template's criteria into a project: add the keys it lacks, report the keys whose
    definition differs, never overwrite nor delete. Records which version was applied.

    The caller re-evaluates the project afterwards (an import applies several templates and its own
    criteria first, then evaluates once).
    """
    with transaction.atomic():
        # Two applies to one project at once would both add the same keys; the second would then
        # fail on the unique key. Locking the project row makes them take turns.
        Project.objects.lock(project.pk)
        # Lock the template too, so its version and criteria are read as one state even while a
        # refresh from the data files runs.
        template = Template.objects.select_for_update().get(pk=template.pk)
        existing = {c.key: c for c in Criterion.objects.filter(project=project)}
        report = TemplateApplyReport(template=template.key, version=template.version)
        for source in template.criteria.order_by("position", "id"):
            current = existing.get(source.key)
            if current is None:
                criterion = Criterion.objects.create(
                    project=project,
                    source_template=template,
                    position=source.position,
                    **_definition_values(source),
                )
                audit_record(
                    action="criterion.create",
                    instance=criterion,
                    actor=actor,
                    actor_label=actor_label,
                    project=project,
                    after=audit_snapshot(criterion),
                )
                report.added.append(source.key)
            elif fields := _differing_fields(current, source):
                report.differences.append((source.key, fields))
            else:
                report.unchanged.append(source.key)

        applied = AppliedTemplate.objects.filter(project=project, template=template).first()
        if applied is None or applied.version != template.version:
            before = {"version": applied.version} if applied is not None else None
            applied, _ = AppliedTemplate.objects.update_or_create(
                project=project,
                template=template,
                defaults={"version": template.version, "applied_at": timezone.now()},
            )
            audit_record(
                action="template.apply",
                instance=applied,
                actor=actor,
                actor_label=actor_label,
                project=project,
                before=before,
                after={"template": template.key, "version": template.version},
            )
    return report
