"""Apply a checks-as-code document: validate all of it, then upsert everything in one transaction.

Import is idempotent and never deletes: what the file does not mention is kept (and reported as
"not in file (kept)"), because PRODUCT.md never lets anything silently delete a check. A project
field the file leaves out is left as it is; a criterion, health check or channel the file lists is
written as the file defines it.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from readiness.alerts.models import Channel
from readiness.audit.services import audit_record, audit_snapshot
from readiness.checks_as_code.criteria import definition_fields
from readiness.checks_as_code.plan import (
    ChannelPlan,
    CriterionPlan,
    HealthCheckPlan,
    ImportPlan,
    MetricSourcePlan,
    ProjectPlan,
    TeamPlan,
    UserPlan,
)
from readiness.checks_as_code.report import ImportReport, changes_text
from readiness.checks_as_code.rights import import_allowed
from readiness.checks_as_code.schema import checks_validate
from readiness.projects.models import OWNER_FIELDS, Project, Team
from readiness.projects.services import project_create, project_set_stage
from readiness.scoring.models import AppliedTemplate, Criterion, Template
from readiness.scoring.templates import template_apply
from readiness.telemetry.models import HealthCheck, MetricSource

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser


def checks_import(
    *, document: Any, dry_run: bool, actor: AbstractBaseUser | None, actor_label: str | None = None
) -> ImportReport:
    """Validate ``document`` (raises ``ChecksInvalid`` with every problem, changing nothing), then
    apply it. A dry run applies it too, inside the same transaction, and rolls back: the report of a
    dry run is exactly what the real import would do.

    ``actor`` is the staff user importing, or ``None`` for the command line; anyone else gets
    ``PermissionDenied`` before the file is even read. The audit log names the actor, or
    ``actor_label`` ("import" by default for the command line)."""
    if not import_allowed(actor):
        raise PermissionDenied("only a staff user or the command line may import checks as code")
    label = actor_label or (actor.get_username() if actor is not None else "import")
    with transaction.atomic():
        plan = checks_validate(document)
        report = _Import(plan, actor=actor, actor_label=label, report=ImportReport(dry_run=dry_run)).run()
        if dry_run:
            transaction.set_rollback(True)
        else:
            for project_id in Project.objects.filter(slug__in=report.changed_projects).values_list(
                "pk", flat=True
            ):
                # After commit, so the evaluation reads what was imported; robust, so a failing
                # evaluation is logged without turning a committed import into an error.
                transaction.on_commit(partial(_evaluate, project_id), robust=True)
    return report


def _evaluate(project_id: int) -> None:
    from readiness.scoring.services import scorecard_refresh

    project = Project.objects.filter(pk=project_id).first()
    if project is not None:
        scorecard_refresh(project=project)


def _channel_identity(channel: Channel) -> tuple[str, str, tuple[str, ...]]:
    # ``to`` is free JSON in the admin console: compare it as text so odd values never crash an import.
    to = tuple(str(address) for address in channel.to) if isinstance(channel.to, list) else ()
    return ChannelPlan(path="", kind=channel.kind, url=channel.url, to=to).identity


def _field_label(name: str) -> str:
    return f"owners.{name.removeprefix('owner_')}" if name.startswith("owner_") else name


def _field_text(value: Any) -> Any:
    """Teams by slug and people by username, as the file names them."""
    if isinstance(value, Team):
        return value.slug
    if hasattr(value, "get_username"):
        return value.get_username()
    return value


def _split_name(name: str) -> tuple[str, str]:
    first, _, last = name.partition(" ")
    return first, last


def _team_snapshot(team: Team) -> dict[str, Any]:
    """A team for the audit log, its members by username (who may read its projects)."""
    members = team.members.order_by(get_user_model().USERNAME_FIELD)
    return {"slug": team.slug, "name": team.name, "members": [m.get_username() for m in members]}


class _Import:
    def __init__(
        self, plan: ImportPlan, *, actor: AbstractBaseUser | None, actor_label: str, report: ImportReport
    ) -> None:
        self.plan = plan
        self.actor = actor
        self.actor_label = actor_label
        self.report = report
        self.users: dict[str, Any] = {}

    def run(self) -> ImportReport:
        for user in self.plan.users:
            self.user(user)
        for team in self.plan.teams:
            self.team(team)
        for project in self.plan.projects:
            self.project(project)
        return self.report

    def user_named(self, username: str) -> Any:
        if username not in self.users:
            model = get_user_model()
            self.users[username] = model.objects.get(**{model.USERNAME_FIELD: username})
        return self.users[username]

    # --- users and teams -------------------------------------------------------------------------

    def user(self, plan: UserPlan) -> None:
        model = get_user_model()
        user = model.objects.filter(**{model.USERNAME_FIELD: plan.username}).first()
        if user is None:
            user = model(**{model.USERNAME_FIELD: plan.username}, email=plan.email or "")
            user.first_name, user.last_name = _split_name(plan.name or "")
            # Login is set up separately (SSO, or an admin sets a password): no password in files.
            user.set_unusable_password()
            user.save()
            self.report.add("created", f"user {plan.username}")
        else:
            changes: list[tuple[str, Any, Any]] = []
            if plan.email is not None and plan.email != user.email:
                changes.append(("email", user.email, plan.email))
                user.email = plan.email
            if plan.name is not None and plan.name != user.get_full_name():
                changes.append(("name", user.get_full_name(), plan.name))
                user.first_name, user.last_name = _split_name(plan.name)
            if changes:
                user.save(update_fields=["email", "first_name", "last_name"])
                self.report.add("updated", f"user {plan.username}: {changes_text(changes)}")
            else:
                self.report.add("unchanged", f"user {plan.username} unchanged")
        self.users[plan.username] = user

    def team(self, plan: TeamPlan) -> None:
        team = Team.objects.filter(slug=plan.slug).first()
        created = team is None
        changes: list[str] = []
        before = None if team is None else _team_snapshot(team)
        if team is None:
            team = Team.objects.create(slug=plan.slug, name=plan.name)
        elif team.name != plan.name:
            changes.append(changes_text([("name", team.name, plan.name)]))
            team.name = plan.name
            team.save(update_fields=["name"])
        if plan.members is not None:
            current = set(team.members.values_list(get_user_model().USERNAME_FIELD, flat=True))
            wanted = set(plan.members)
            if current != wanted:
                team.members.set([self.user_named(name) for name in plan.members])
                moves = [f"+{n}" for n in sorted(wanted - current)] + [
                    f"-{n}" for n in sorted(current - wanted)
                ]
                if not created:
                    changes.append(f"members {' '.join(moves)}")
        if created or changes:
            # Membership decides who reads the team's projects: every change is audited.
            audit_record(
                action="team.create" if created else "team.update",
                instance=team,
                actor=self.actor,
                actor_label=self.actor_label,
                before=before,
                after=_team_snapshot(team),
            )
        if created:
            self.report.add("created", f"team {plan.slug}")
        elif changes:
            self.report.add("updated", f"team {plan.slug}: {', '.join(changes)}")
        else:
            self.report.add("unchanged", f"team {plan.slug} unchanged")

    # --- projects --------------------------------------------------------------------------------

    def project(self, plan: ProjectPlan) -> None:
        project = Project.objects.filter(slug=plan.slug).select_related("team").first()
        values = dict(plan.fields)
        values["team"] = Team.objects.get(slug=values["team"])
        if "definitions" in values:
            values["definitions"] = dict(values["definitions"])
        for dimension, username in plan.owners.items():
            values[OWNER_FIELDS[dimension]] = self.user_named(username) if username else None
        if project is None:
            project = Project(slug=plan.slug, **values)
            if plan.stage:
                project.stage = plan.stage
            project_create(project=project, by=self.actor, actor_label=self.actor_label)
            self.report.add("created", f"project {plan.slug}", project=plan.slug)
        else:
            self.project_update(project, plan, values)
        self.templates(project, plan)
        self.health_checks(project, plan.health_checks)
        self.channels(project, plan.channels)
        self.metric_sources(project, plan.metric_sources)

    def project_update(self, project: Project, plan: ProjectPlan, values: dict[str, Any]) -> None:
        changes = [
            (_field_label(name), _field_text(getattr(project, name)), _field_text(new))
            for name, new in values.items()
            if getattr(project, name) != new
        ]
        owners_before = project.owner_usernames()
        if changes:
            before = audit_snapshot(project)
            for name, new in values.items():
                setattr(project, name, new)
            project.save(update_fields=list(values))
            audit_record(
                action="project.update",
                instance=project,
                actor=self.actor,
                actor_label=self.actor_label,
                project=project,
                before=before,
                after=audit_snapshot(project),
            )
        owners_after = project.owner_usernames()
        if owners_after != owners_before:
            # The responsible people sign off and approve waivers: their changes get an entry of their
            # own, by username (project.update holds only user ids).
            audit_record(
                action="project.owners",
                instance=project,
                actor=self.actor,
                actor_label=self.actor_label,
                project=project,
                before=owners_before,
                after=owners_after,
            )
        if plan.stage and plan.stage != project.stage:
            changes.append(("stage", project.stage, plan.stage))
            project_set_stage(project=project, stage=plan.stage, by=self.actor, actor_label=self.actor_label)
        if changes:
            self.report.add("updated", f"project {plan.slug}: {changes_text(changes)}", project=plan.slug)
        else:
            self.report.add("unchanged", f"project {plan.slug} unchanged")

    def templates(self, project: Project, plan: ProjectPlan) -> None:
        """Apply the templates first, then the file's criteria over them (by key)."""
        prefix = f"{plan.slug}.criteria"
        added_from: dict[str, str] = {}  # key → template, for criteria a template added just now
        notes: list[str] = []
        overridden = {c.key for c in plan.criteria}
        for key in plan.templates:
            template = Template.objects.get(key=key)
            applied = AppliedTemplate.objects.filter(project=project, template=template).first()
            if applied is not None and applied.version == template.version:
                # Re-applying the version the project already has adds nothing: its criteria are
                # the project's own since then, and deleted ones stay deleted.
                self.report.add("unchanged", f"{plan.slug}.templates.{key} v{template.version} unchanged")
                continue
            result = template_apply(
                project=project, template=template, actor=self.actor, actor_label=self.actor_label
            )
            was = f"v{applied.version} → " if applied is not None else ""
            self.report.add(
                "updated" if applied else "created",
                f"{plan.slug}.templates.{key} {was}v{result.version}: {len(result.added)} criteria added",
                project=plan.slug,
            )
            added_from.update(dict.fromkeys(result.added, key))
            for criterion_key, fields in result.differences:
                if criterion_key not in overridden:
                    notes.append(
                        f"{prefix}.{criterion_key} differs from {key} v{result.version} "
                        f"({', '.join(fields)}); the project's definition is kept"
                    )
        lines = self.criteria(project, plan, added_from)
        for key, template_key in added_from.items():
            if key not in lines:
                self.report.add("created", f"{prefix}.{key} (from {template_key})", project=plan.slug)
        for status, text in lines.values():
            self.report.add(status, text, project=plan.slug)
        for note in notes:
            self.report.add("note", note)
        in_file = overridden | {
            key
            for t in Template.objects.filter(key__in=plan.templates)
            for key in t.criteria.values_list("key", flat=True)
        }
        for key in project.criteria.exclude(key__in=in_file).values_list("key", flat=True):
            self.report.add("kept", f"{prefix}.{key}: not in file (kept)")

    def criteria(
        self, project: Project, plan: ProjectPlan, added_from: dict[str, str]
    ) -> dict[str, tuple[str, str]]:
        """Upsert the file's criteria by key; returns key → (status, report line)."""
        existing = {c.key: c for c in Criterion.objects.filter(project=project)}
        position = max((c.position for c in existing.values()), default=-1) + 1
        lines: dict[str, tuple[str, str]] = {}
        name = f"{plan.slug}.criteria"
        for item in plan.criteria:
            criterion = existing.get(item.key)
            if criterion is None:
                criterion = self.criterion_create(project, item, position)
                position += 1
                lines[item.key] = ("created", f"{name}.{item.key}")
                continue
            changes = [
                (field, getattr(criterion, field), item.fields[field])
                for field in definition_fields()
                if getattr(criterion, field) != item.fields[field]
            ]
            if changes:
                before = audit_snapshot(criterion)
                for field, _, new in changes:
                    setattr(criterion, field, new)
                criterion.updated_at = timezone.now()
                criterion.save()
                audit_record(
                    action="criterion.update",
                    instance=criterion,
                    actor=self.actor,
                    actor_label=self.actor_label,
                    project=project,
                    before=before,
                    after=audit_snapshot(criterion),
                )
            if item.key in added_from:
                with_changes = f"; {changes_text(changes)}" if changes else ""
                lines[item.key] = (
                    "created",
                    f"{name}.{item.key} (from {added_from[item.key]}{with_changes})",
                )
            elif changes:
                lines[item.key] = ("updated", f"{name}.{item.key}: {changes_text(changes)}")
            else:
                lines[item.key] = ("unchanged", f"{name}.{item.key} unchanged")
        return lines

    def criterion_create(self, project: Project, item: CriterionPlan, position: int) -> Criterion:
        template = Template.objects.filter(key=item.template_key).first() if item.template_key else None
        criterion = Criterion.objects.create(
            project=project, position=position, source_template=template, **item.fields
        )
        audit_record(
            action="criterion.create",
            instance=criterion,
            actor=self.actor,
            actor_label=self.actor_label,
            project=project,
            after=audit_snapshot(criterion),
        )
        return criterion

    # --- health checks and channels --------------------------------------------------------------

    def health_checks(self, project: Project, plans: tuple[HealthCheckPlan, ...]) -> None:
        prefix = f"{project.slug}.health_checks"
        existing = {h.name: h for h in HealthCheck.objects.filter(project=project)}
        for plan in plans:
            check = existing.get(plan.name)
            wanted = plan.fields()
            if check is None:
                HealthCheck.objects.create(project=project, name=plan.name, **wanted)
                self.report.add("created", f"{prefix}.{plan.name}", project=project.slug)
                continue
            changes = [(f, getattr(check, f), v) for f, v in wanted.items() if getattr(check, f) != v]
            if changes:
                for field, _, new in changes:
                    setattr(check, field, new)
                check.save(update_fields=[field for field, _, _ in changes])
                self.report.add(
                    "updated", f"{prefix}.{plan.name}: {changes_text(changes)}", project=project.slug
                )
            else:
                self.report.add("unchanged", f"{prefix}.{plan.name} unchanged")
        listed = {plan.name for plan in plans}
        for name in sorted(set(existing) - listed):
            self.report.add("kept", f"{prefix}.{name}: not in file (kept)")

    def channels(self, project: Project, plans: tuple[ChannelPlan, ...]) -> None:
        prefix = f"{project.slug}.channels"
        existing = {_channel_identity(ch): ch for ch in Channel.objects.filter(project=project)}
        for plan in plans:
            channel = existing.get(plan.identity)
            if channel is None:
                Channel.objects.create(
                    project=project, kind=plan.kind, url=plan.url, to=list(plan.to), digest=bool(plan.digest)
                )
                self.report.add("created", f"{prefix}: {plan.label()}", project=project.slug)
            elif plan.digest is not None and plan.digest != channel.digest:
                channel.digest = plan.digest
                channel.save(update_fields=["digest"])
                self.report.add(
                    "updated", f"{prefix}: {plan.label()}: digest → {plan.digest}", project=project.slug
                )
            else:
                self.report.add("unchanged", f"{prefix}: {plan.label()} unchanged")
        listed = {plan.identity for plan in plans}
        for identity, channel in existing.items():
            if identity not in listed:
                self.report.add("kept", f"{prefix}: {channel}: not in file (kept)")

    def metric_sources(self, project: Project, plans: tuple[MetricSourcePlan, ...]) -> None:
        """Sources decide which numbers a project is judged on: every change is audited."""
        prefix = f"{project.slug}.metric_sources"
        existing = {s.name: s for s in MetricSource.objects.filter(project=project)}
        for plan in plans:
            source = existing.get(plan.name)
            if source is None:
                source = MetricSource.objects.create(project=project, name=plan.name, **plan.fields)
                audit_record(
                    action="metric_source.create",
                    instance=source,
                    actor=self.actor,
                    actor_label=self.actor_label,
                    project=project,
                    after=audit_snapshot(source),
                )
                self.report.add("created", f"{prefix}.{plan.name}", project=project.slug)
                continue
            changes = [(f, getattr(source, f), v) for f, v in plan.fields.items() if getattr(source, f) != v]
            if not changes:
                self.report.add("unchanged", f"{prefix}.{plan.name} unchanged")
                continue
            before = audit_snapshot(source)
            for name, _, new in changes:
                setattr(source, name, new)
            source.save(update_fields=[name for name, _, _ in changes])
            audit_record(
                action="metric_source.update",
                instance=source,
                actor=self.actor,
                actor_label=self.actor_label,
                project=project,
                before=before,
                after=audit_snapshot(source),
            )
            self.report.add("updated", f"{prefix}.{plan.name}: {changes_text(changes)}", project=project.slug)
        listed = {plan.name for plan in plans}
        for name in sorted(set(existing) - listed):
            self.report.add("kept", f"{prefix}.{name}: not in file (kept)")
