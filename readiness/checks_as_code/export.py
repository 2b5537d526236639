"""Write projects as checks-as-code YAML that ``readiness_import`` accepts and that round-trips:
export → import → export gives the same text, byte for byte.

Every criterion is written out in full, those copied from templates included, so the file alone says
what a project checks. Ordering is fixed (slugs, usernames, criterion positions) and nothing
time-dependent is written, so two exports of the same state are identical.
"""

from __future__ import annotations

from typing import Any

import yaml
from django.contrib.auth import get_user_model

from readiness.alerts.models import Channel
from readiness.checks_as_code.criteria import criterion_bases
from readiness.projects.models import OWNER_FIELDS, Project, Team
from readiness.projects.vocabulary import Dimension
from readiness.scoring.models import AppliedTemplate, Criterion, TemplateCriterion
from readiness.scoring.templates import criterion_definition_dict, template_definition_fields
from readiness.telemetry.models import HealthCheck, MetricSource

HEADER = "# Readiness checks as code (PRODUCT.md §6). Apply with: python manage.py readiness_import FILE\n"


def checks_export(*, project_slug: str | None = None) -> str:
    """All projects (or one) with their teams, people, criteria, health checks, channels and metric
    sources."""
    projects = list(Project.objects.select_related("team", *OWNER_FIELDS.values()).order_by("slug"))
    if project_slug is not None:
        projects = [p for p in projects if p.slug == project_slug]
        if not projects:
            raise Project.DoesNotExist(f"unknown project {project_slug!r}")
        teams = [projects[0].team]
    else:
        teams = list(Team.objects.order_by("slug"))
    team_members = {
        team.pk: sorted(u.get_username() for u in team.members.all())
        for team in Team.objects.filter(pk__in=[t.pk for t in teams]).prefetch_related("members")
    }
    people = {name for names in team_members.values() for name in names}
    people |= {name for p in projects for name in p.owner_usernames().values() if name}

    document: dict[str, Any] = {}
    if people:
        document["users"] = _users(sorted(people))
    if teams:
        document["teams"] = [{"slug": t.slug, "name": t.name, "members": team_members[t.pk]} for t in teams]
    if projects:
        document["projects"] = [_project(p) for p in projects]
    return HEADER + yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


def _users(usernames: list[str]) -> list[dict[str, str]]:
    model = get_user_model()
    found = {u.get_username(): u for u in model.objects.filter(**{f"{model.USERNAME_FIELD}__in": usernames})}
    entries = []
    for username in usernames:
        user = found[username]
        entry = {"username": username}
        if user.email:
            entry["email"] = user.email
        if full_name := user.get_full_name():
            entry["name"] = full_name
        entries.append(entry)
    return entries


def _project(project: Project) -> dict[str, Any]:
    entry: dict[str, Any] = {"slug": project.slug, "name": project.name}
    if project.description:
        entry["description"] = project.description
    entry |= {"team": project.team.slug, "stage": project.stage, "risk_tier": project.risk_tier}
    if project.target_date:
        entry["target_date"] = project.target_date
    if project.require_signoff_for_pilot:
        entry["require_signoff_for_pilot"] = True
    definitions = {d: project.definitions[d] for d in Dimension.values if project.definitions.get(d)}
    if definitions:
        entry["definitions"] = definitions
    owners = {d: name for d, name in project.owner_usernames().items() if name}
    if owners:
        entry["owners"] = owners
    # Application order matters: when two templates share a key, the first one is the merge base.
    templates = [
        a.template
        for a in AppliedTemplate.objects.filter(project=project)
        .select_related("template")
        .prefetch_related("template__criteria")
        .order_by("applied_at", "id")
    ]
    if templates:
        entry["templates"] = [t.key for t in templates]
    bases = criterion_bases(templates)
    criteria = Criterion.objects.filter(project=project).order_by("position", "id")
    if criteria:
        entry["criteria"] = [_criterion(c, bases.get(c.key)) for c in criteria]
    checks = HealthCheck.objects.filter(project=project).order_by("name")
    if checks:
        entry["health_checks"] = [_health_check(h) for h in checks]
    channels = Channel.objects.filter(project=project).order_by("kind", "id")
    if channels:
        entry["channels"] = [
            {"kind": ch.kind, **({"url": ch.url} if ch.kind == Channel.Kind.WEBHOOK else {"to": ch.to})}
            # Written only when on: the default needs no line, and an import without it keeps the mode.
            | ({"digest": True} if ch.digest else {})
            for ch in channels
        ]
    sources = MetricSource.objects.filter(project=project).order_by("name")
    if sources:
        entry["metric_sources"] = [source.definition() for source in sources]
    return entry


def _criterion(criterion: Criterion, base: TemplateCriterion | None) -> dict[str, Any]:
    data = criterion_definition_dict(criterion)
    if base is not None:
        # On import a criterion from a template merges over the template's definition, so a field the
        # project holds at its default where the template does not (a template's warn_threshold
        # cleared, an advisory test raised to blocker) must be written out, or it would come back.
        for name in criterion_definition_dict(base):
            if name not in data:
                data[name] = getattr(criterion, name)
    return {name: data[name] for name in template_definition_fields() if name in data}


def _health_check(check: HealthCheck) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": check.name,
        "url": check.url,
        "method": check.method,
        "expected_status": check.expected_status,
        "timeout": check.timeout,
        "interval": check.interval,
    }
    if check.expected_body_contains:
        entry["expected_body_contains"] = check.expected_body_contains
    return entry
