"""Validate a whole checks-as-code document (PRODUCT.md §6) before anything is applied.

``checks_validate`` walks the parsed YAML once, collects *every* problem with its YAML path
(``projects[0].criteria[1].op``), resolves the names the file refers to (users, teams, templates)
against the file itself and the database, and returns an ``ImportPlan``; when anything is wrong it
raises ``ChecksInvalid`` with all the problems instead. It only reads the database. A file may not
change an existing superuser's email or name (rights.py says why).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError

from readiness.checks_as_code import checkers as c
from readiness.checks_as_code.checkers import INVALID, MISSING, ChecksInvalid, Problems, at
from readiness.checks_as_code.criteria import criterion_bases, criterion_validate
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
from readiness.checks_as_code.rights import superusers_unchanged
from readiness.projects.models import Team
from readiness.projects.vocabulary import Dimension, RiskTier, Stage
from readiness.scoring.models import AppliedTemplate, Template
from readiness.telemetry.sources.config import KEYS as METRIC_SOURCE_KEYS
from readiness.telemetry.sources.config import source_problems

TOP_KEYS = ("users", "teams", "projects")
USER_KEYS = ("username", "email", "name")
TEAM_KEYS = ("slug", "name", "members")
PROJECT_KEYS = (
    "slug", "name", "description", "team", "stage", "risk_tier", "target_date",
    "require_signoff_for_pilot", "definitions", "owners", "templates", "criteria",
    "health_checks", "channels", "metric_sources",
)  # fmt: skip
HEALTH_CHECK_KEYS = (
    "name", "url", "method", "expected_status", "timeout", "interval", "expected_body_contains",
)  # fmt: skip
CHANNEL_KEYS = ("kind", "url", "to", "digest")

SLUG_PATTERN = r"[-a-zA-Z0-9_]+"
SLUG_HINT = "letters, digits, - and _ only"
slug = partial(c.text, max_length=64, blank=False, pattern=SLUG_PATTERN, pattern_hint=SLUG_HINT)
name_200 = partial(c.text, max_length=200, blank=False)
_username_validator = UnicodeUsernameValidator()


def username(problems: Problems, path: str, value: Any) -> Any:
    checked = c.text(problems, path, value, max_length=150, blank=False)
    if checked is INVALID:
        return INVALID
    try:
        _username_validator(checked)
    except ValidationError:
        problems.add(path, f"{c.shown(checked)} is not a valid username: {_username_validator.message}")
        return INVALID
    return checked


class _Validation:
    """One pass over one document; holds the problems and the names to resolve at the end."""

    def __init__(self) -> None:
        self.problems = Problems()
        self.user_refs: list[tuple[str, str]] = []  # (path, username) that must exist
        self.team_refs: list[tuple[str, str]] = []
        # Names the file defines, even in an entry with other problems: a user whose email is wrong
        # is still defined, so the teams listing them need no second, misleading error.
        self.defined_users: set[str] = set()
        self.defined_teams: set[str] = set()

    def items(self, doc: dict[str, Any], key: str) -> list[tuple[str, Any]]:
        value = doc.get(key)
        if value is None:
            return []
        listed = c.sequence(self.problems, key, value)
        return [(at(key, index), item) for index, item in enumerate(listed or [])]

    def run(self, document: Any) -> ImportPlan:
        doc = c.mapping(self.problems, "", {} if document is None else document, TOP_KEYS)
        if doc is None:
            raise ChecksInvalid(self.problems.items)
        users = [u for path, raw in self.items(doc, "users") if (u := self.user(path, raw))]
        teams = [t for path, raw in self.items(doc, "teams") if (t := self.team(path, raw))]
        projects = [p for path, raw in self.items(doc, "projects") if (p := self.project(path, raw))]
        c.duplicates(self.problems, [(at(u.path, "username"), u.username) for u in users], "username")
        c.duplicates(self.problems, [(at(t.path, "slug"), t.slug) for t in teams], "team slug")
        c.duplicates(self.problems, [(at(p.path, "slug"), p.slug) for p in projects], "project slug")
        self.resolve(known_users=self.defined_users, known_teams=self.defined_teams)
        superusers_unchanged(self.problems, users)
        if self.problems.items:
            raise ChecksInvalid(c.in_document_order(self.problems.items, document))
        return ImportPlan(users=tuple(users), teams=tuple(teams), projects=tuple(projects))

    def resolve(self, *, known_users: set[str], known_teams: set[str]) -> None:
        """Names not defined in the file must exist in the database."""
        wanted = {name for _, name in self.user_refs if name not in known_users}
        # Only well-formed names go to the database: a NUL character would make PostgreSQL fail.
        wanted = {name for name in wanted if username(Problems(), "", name) is not INVALID}
        model = get_user_model()
        existing = set(
            model.objects.filter(**{f"{model.USERNAME_FIELD}__in": wanted}).values_list(
                model.USERNAME_FIELD, flat=True
            )
        )
        for path, name in self.user_refs:
            if name not in known_users and name not in existing:
                self.problems.add(
                    path, f"unknown user {c.shown(name)}: not in this file's users nor in Readiness"
                )
        wanted = {s for _, s in self.team_refs if s not in known_teams}
        wanted = {s for s in wanted if slug(Problems(), "", s) is not INVALID}
        existing = set(Team.objects.filter(slug__in=wanted).values_list("slug", flat=True))
        for path, team in self.team_refs:
            if team not in known_teams and team not in existing:
                self.problems.add(
                    path, f"unknown team {c.shown(team)}: not in this file's teams nor in Readiness"
                )

    def user_ref(self, path: str, value: Any) -> Any:
        checked = c.text(self.problems, path, value, blank=False)
        if checked is not INVALID:
            self.user_refs.append((path, checked))
        return checked

    # --- users and teams -------------------------------------------------------------------------

    def user(self, path: str, raw: Any) -> UserPlan | None:
        entry = c.mapping(self.problems, path, raw, USER_KEYS)
        if entry is None:
            return None
        found = len(self.problems)
        name = username(self.problems, at(path, "username"), entry.get("username", MISSING))
        if name is not INVALID:
            self.defined_users.add(name)
        email = None
        if entry.get("email") is not None:
            email = c.email(self.problems, at(path, "email"), entry["email"])
        full_name = None
        if entry.get("name") is not None:
            # Stored as first and last name, split at the first space: each part holds 150 characters.
            full_name = c.text(self.problems, at(path, "name"), entry["name"], max_length=301)
            if full_name is not INVALID and any(len(part) > 150 for part in full_name.split(" ", 1)):
                self.problems.add(at(path, "name"), "first and last name are at most 150 characters each")
            if full_name is not INVALID:
                full_name = full_name.strip()
        if len(self.problems) > found:
            return None
        return UserPlan(path=path, username=name, email=email, name=full_name)

    def team(self, path: str, raw: Any) -> TeamPlan | None:
        entry = c.mapping(self.problems, path, raw, TEAM_KEYS)
        if entry is None:
            return None
        found = len(self.problems)
        team_slug = slug(self.problems, at(path, "slug"), entry.get("slug", MISSING))
        if team_slug is not INVALID:
            self.defined_teams.add(team_slug)
        team_name = name_200(self.problems, at(path, "name"), entry.get("name", MISSING))
        members: tuple[str, ...] | None = None
        if "members" in entry:
            raw_members = entry["members"]
            listed = (
                [] if raw_members is None else c.sequence(self.problems, at(path, "members"), raw_members)
            )
            listed = listed or []
            names = [self.user_ref(at(at(path, "members"), i), m) for i, m in enumerate(listed)]
            members = tuple(n for n in names if n is not INVALID)
            c.duplicates(
                self.problems,
                [(at(at(path, "members"), i), n) for i, n in enumerate(names) if n is not INVALID],
                "member",
            )
        if len(self.problems) > found:
            return None
        return TeamPlan(path=path, slug=team_slug, name=team_name, members=members)

    # --- projects --------------------------------------------------------------------------------

    def project(self, path: str, raw: Any) -> ProjectPlan | None:
        entry = c.mapping(self.problems, path, raw, PROJECT_KEYS)
        if entry is None:
            return None
        found = len(self.problems)
        p = self.problems
        project_slug = slug(p, at(path, "slug"), entry.get("slug", MISSING))
        fields: dict[str, Any] = {"name": name_200(p, at(path, "name"), entry.get("name", MISSING))}
        team = slug(p, at(path, "team"), entry.get("team", MISSING))
        if team is not INVALID:
            self.team_refs.append((at(path, "team"), team))
        fields["team"] = team
        stage = c.enum(p, at(path, "stage"), entry["stage"], Stage.values) if "stage" in entry else None
        if "risk_tier" in entry:
            fields["risk_tier"] = c.enum(p, at(path, "risk_tier"), entry["risk_tier"], RiskTier.values)
        if "target_date" in entry:
            raw_date = entry["target_date"]
            fields["target_date"] = None if raw_date is None else c.date(p, at(path, "target_date"), raw_date)
        if "description" in entry:
            description = entry["description"]
            fields["description"] = (
                "" if description is None else c.text(p, at(path, "description"), description)
            )
        if "require_signoff_for_pilot" in entry:
            fields["require_signoff_for_pilot"] = c.boolean(
                p, at(path, "require_signoff_for_pilot"), entry["require_signoff_for_pilot"]
            )
        if "definitions" in entry:
            fields["definitions"] = self.definitions(at(path, "definitions"), entry["definitions"])
        owners = self.owners(at(path, "owners"), entry["owners"]) if "owners" in entry else {}
        templates = self.templates(at(path, "templates"), entry.get("templates"))
        criteria = self.criteria(at(path, "criteria"), entry.get("criteria"), project_slug, templates)
        health_checks = self.health_checks(at(path, "health_checks"), entry.get("health_checks"))
        channels = self.channels(at(path, "channels"), entry.get("channels"))
        metric_sources = self.metric_sources(at(path, "metric_sources"), entry.get("metric_sources"))
        if len(p) > found:
            return None
        return ProjectPlan(
            path=path,
            slug=project_slug,
            fields=fields,
            stage=stage,
            owners=owners,
            templates=tuple(t.key for t in templates),
            criteria=tuple(criteria),
            health_checks=tuple(health_checks),
            channels=tuple(channels),
            metric_sources=tuple(metric_sources),
        )

    def definitions(self, path: str, raw: Any) -> Any:
        if raw is None:
            return {}
        entry = c.mapping(self.problems, path, raw, Dimension.values)
        if entry is None:
            return INVALID
        result = {}
        for dimension in Dimension.values:  # stored in the fixed order of the dimensions
            if (statement := entry.get(dimension)) is not None:
                checked = c.text(self.problems, at(path, dimension), statement)
                if checked:  # an empty statement means the default of PRODUCT.md §1
                    result[dimension] = checked
        return result

    def owners(self, path: str, raw: Any) -> dict[str, str | None]:
        entry = c.mapping(self.problems, path, raw, Dimension.values)
        result: dict[str, str | None] = {}
        for dimension, name in (entry or {}).items():
            if dimension in Dimension.values:
                # null removes the responsible person of that dimension.
                result[dimension] = None if name is None else self.user_ref(at(path, dimension), name)
        return result

    def templates(self, path: str, raw: Any) -> list[Template]:
        listed = [] if raw is None else (c.sequence(self.problems, path, raw) or [])
        keys = [slug(self.problems, at(path, i), key) for i, key in enumerate(listed)]
        c.duplicates(
            self.problems, [(at(path, i), k) for i, k in enumerate(keys) if k is not INVALID], "template"
        )
        found = {
            t.key: t
            for t in Template.objects.filter(key__in=[k for k in keys if k is not INVALID]).prefetch_related(
                "criteria"
            )
        }
        for index, key in enumerate(keys):
            if key is not INVALID and key not in found:
                known = ", ".join(Template.objects.order_by("key").values_list("key", flat=True))
                self.problems.add(at(path, index), f"unknown template {key!r}; known templates: {known}")
        return [found[k] for k in dict.fromkeys(keys) if k in found]

    def criteria(
        self, path: str, raw: Any, project_slug: Any, templates: list[Template]
    ) -> list[CriterionPlan]:
        listed = [] if raw is None else (c.sequence(self.problems, path, raw) or [])
        # Templates applied by an earlier import or in the admin are merge bases too, after the listed ones.
        applied: list[Template] = []
        if project_slug is not INVALID and listed:
            applied = [
                a.template
                for a in AppliedTemplate.objects.filter(project__slug=project_slug)
                .select_related("template")
                .prefetch_related("template__criteria")
                .order_by("applied_at", "id")
            ]
        bases = criterion_bases([*templates, *applied])
        plans: list[CriterionPlan] = []
        keys: list[tuple[str, str]] = []
        for index, item in enumerate(listed):
            if isinstance(item, dict) and isinstance(item.get("key"), str):
                keys.append((at(at(path, index), "key"), item["key"]))
            plan = criterion_validate(self.problems, at(path, index), item, bases)
            if plan is not None:
                plans.append(plan)
        c.duplicates(self.problems, keys, "criterion key")
        return plans

    def health_checks(self, path: str, raw: Any) -> list[HealthCheckPlan]:
        listed = [] if raw is None else (c.sequence(self.problems, path, raw) or [])
        plans: list[HealthCheckPlan] = []
        names: list[tuple[str, str]] = []
        p = self.problems
        for index, item in enumerate(listed):
            where = at(path, index)
            entry = c.mapping(p, where, item, HEALTH_CHECK_KEYS)
            if entry is None:
                continue
            found = len(p)
            name = c.text(p, at(where, "name"), entry.get("name", MISSING), max_length=100, blank=False)
            if name is not INVALID:
                names.append((at(where, "name"), name))
            values = {
                "url": c.http_url(p, at(where, "url"), entry.get("url", MISSING)),
                "method": c.enum(p, at(where, "method"), entry.get("method", "GET"), ["GET", "HEAD"]),
                "expected_status": c.integer(
                    p,
                    at(where, "expected_status"),
                    entry.get("expected_status", 200),
                    minimum=100,
                    maximum=599,
                ),
                "timeout": c.number(p, at(where, "timeout"), entry.get("timeout", 5.0), minimum=0.1),
                "interval": c.integer(p, at(where, "interval"), entry.get("interval", 60), minimum=30),
                "expected_body_contains": c.text(
                    p,
                    at(where, "expected_body_contains"),
                    entry.get("expected_body_contains") or "",
                    max_length=200,
                ),
            }
            if len(p) == found:
                plans.append(HealthCheckPlan(path=where, name=name, **values))
        c.duplicates(p, names, "health check name")
        return plans

    def metric_sources(self, path: str, raw: Any) -> list[MetricSourcePlan]:
        """PRODUCT.md §8's pull sources, judged by the one set of rules the admin console uses too
        (readiness/telemetry/sources/config.py): kind, interval, auth's environment variables, the
        address rules of the URL."""
        listed = [] if raw is None else (c.sequence(self.problems, path, raw) or [])
        plans: list[MetricSourcePlan] = []
        names: list[tuple[str, str]] = []
        for index, item in enumerate(listed):
            where = at(path, index)
            entry = c.mapping(self.problems, where, item, METRIC_SOURCE_KEYS)
            if entry is None:
                continue
            problems = source_problems(entry)
            for inner, message in problems:
                self.problems.add(at(where, inner), message)
            if isinstance(entry.get("name"), str):
                names.append((at(where, "name"), entry["name"]))
            if not problems:
                plans.append(MetricSourcePlan(path=where, name=entry["name"], fields=source_fields(entry)))
        c.duplicates(self.problems, names, "metric source name")
        return plans

    def channels(self, path: str, raw: Any) -> list[ChannelPlan]:
        listed = [] if raw is None else (c.sequence(self.problems, path, raw) or [])
        plans: list[ChannelPlan] = []
        p = self.problems
        for index, item in enumerate(listed):
            where = at(path, index)
            entry = c.mapping(p, where, item, CHANNEL_KEYS)
            if entry is None:
                continue
            found = len(p)
            if "kind" not in entry:
                p.add(at(where, "kind"), "required")
                continue
            kind = c.enum(p, at(where, "kind"), entry["kind"], ["webhook", "email"])
            unused = {"webhook": "to", "email": "url"}.get(kind)
            if unused in entry:
                p.add(at(where, unused), f"not used by {kind} channels")
            # Absent: an existing channel keeps its mode (a new one sends per evaluation).
            digest = c.boolean(p, at(where, "digest"), entry["digest"]) if "digest" in entry else None
            if kind == "webhook":
                url = c.http_url(p, at(where, "url"), entry.get("url", MISSING))
                if len(p) == found:
                    plans.append(ChannelPlan(path=where, kind=kind, url=url, digest=digest))
            elif kind == "email":
                to = self.recipients(at(where, "to"), entry.get("to"))
                if len(p) == found:
                    plans.append(ChannelPlan(path=where, kind=kind, to=to, digest=digest))
        c.duplicates(p, [(plan.path, plan.identity) for plan in plans], "channel")
        return plans

    def recipients(self, path: str, raw: Any) -> tuple[str, ...]:
        if raw is None:
            self.problems.add(path, "required for an email channel: a list of email addresses")
            return ()
        listed = c.sequence(self.problems, path, raw)
        if listed is None:
            return ()
        if not listed:
            self.problems.add(path, "needs at least one email address")
        addresses = [c.email(self.problems, at(path, i), a) for i, a in enumerate(listed)]
        valid = [(at(path, i), a) for i, a in enumerate(addresses) if a is not INVALID]
        c.duplicates(self.problems, valid, "address")
        return tuple(a for _, a in valid)


def source_fields(entry: dict[str, Any]) -> dict[str, Any]:
    """A valid source entry as MetricSource's fields."""
    version = entry.get("version")
    return {
        "kind": entry["kind"],
        "url": entry["url"],
        "interval": entry.get("interval", 60),
        "auth": dict(entry.get("auth") or {}),
        "queries": dict(entry.get("queries") or {}),
        "model": entry.get("model", ""),
        "alias": entry.get("alias") or "",
        "version": "" if version is None else str(version),
        "metrics": dict(entry.get("metrics") or {}),
    }


def checks_validate(document: Any) -> ImportPlan:
    """The plan of a parsed checks-as-code document, or ``ChecksInvalid`` with every problem in it."""
    return _Validation().run(document)
