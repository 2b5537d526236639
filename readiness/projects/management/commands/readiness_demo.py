"""``manage.py readiness_demo``: load the demo portfolio (PRODUCT.md §6 commands, §7 embedded default).

Each project is imported through the checks-as-code importer, given weeks of metric history, and then
lives its story — stage changes, attestations, waivers, sign-offs, daily evaluations — through the same
services a person or a pipeline would call, oldest moment first, so that its scorecard history, audit
log and decision changes read like a real portfolio's.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any
from unittest import mock

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.db.models import Max, Model
from django.utils import timezone

from readiness.audit.models import AuditEntry
from readiness.checks_as_code.apply import checks_import
from readiness.checks_as_code.checkers import ChecksInvalid
from readiness.projects.demo import (
    DEMO_PASSWORD,
    HEALTH_LABELS,
    DemoProject,
    Portfolio,
    metric_points,
    portfolio_read,
    project_document,
)
from readiness.projects.models import LEADERSHIP_GROUP, Project, ProjectToken, StageChange
from readiness.projects.services import project_set_stage, token_create
from readiness.projects.vocabulary import Stage
from readiness.scoring.models import Attestation, Criterion, Kind, Scorecard, SignOff
from readiness.scoring.services import (
    ActionConflict,
    attestation_create,
    criterion_mark_not_applicable,
    scorecard_refresh,
    signoff_create,
    waiver_approve,
    waiver_request,
)
from readiness.telemetry.models import HealthCheck, MetricPoint
from readiness.telemetry.rollups.marks import rollups_mark

DIMENSIONS = ("data_science", "engineering", "product", "security")
HISTORY_DAYS = 14  # one evaluation a day for the trend lines, as the periodic job would have made
CI_TOKEN_NAME = "ci-pipeline"  # noqa: S105 -- a token name, not its secret
ACTOR_LABEL = "demo"
# Rows the services stamp through a model default (``default=timezone.now``), which keeps the real
# clock: (model, its time field, the path from it to the project's slug).
STAMPED: tuple[tuple[type[Model], str, str], ...] = (
    (Attestation, "attested_at", "criterion__project__slug"),
    (SignOff, "signed_at", "project__slug"),
    (ProjectToken, "created_at", "project__slug"),
    (StageChange, "changed_at", "project__slug"),
    (AuditEntry, "at", "project__slug"),
)

Event = tuple[datetime, int, Callable[[datetime], None]]


class Command(BaseCommand):
    help = (
        "Load the demo portfolio: 12 AI projects across every stage, their people and teams, four "
        "weeks of metric history and their scorecard history. Idempotent: a demo project that is "
        "already there is left as it is (use --reset to load it afresh)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--password",
            default=DEMO_PASSWORD,
            help=f"password of every demo user (default: {DEMO_PASSWORD})",
        )
        parser.add_argument(
            "--url",
            default="http://127.0.0.1:8000",
            help="where Readiness is served, for the login line (default: http://127.0.0.1:8000)",
        )
        parser.add_argument(
            "--reset",
            action="store_true",
            help="delete the demo projects with all their data first, then load them with fresh history",
        )

    def handle(self, *args: Any, password: str, url: str, reset: bool, **options: Any) -> None:
        if not password:
            raise CommandError("--password must not be empty")
        started = time.monotonic()
        # Whole minutes keep every generated timestamp readable; the story is told back from here.
        anchor = timezone.now().replace(second=0, microsecond=0)
        portfolio = portfolio_read()
        slugs = [project.slug for project in portfolio.projects]

        self.stdout.write("Demo people and teams")
        try:
            self.people(portfolio, password)
        except ChecksInvalid as exc:
            raise CommandError(f"the demo's people and teams do not import: {exc.errors}") from exc
        if reset:
            with transaction.atomic():
                # Everything recorded about a demo project goes with it.
                deleted = Project.objects.filter(slug__in=slugs).delete()[1].get("projects.Project", 0)
            self.stdout.write(f"Deleted {deleted} demo project(s) and everything recorded about them")

        self.stdout.write(f"Demo projects (history up to {anchor:%Y-%m-%d %H:%M} UTC)")
        for project in portfolio.projects:
            if Project.objects.filter(slug=project.slug).exists():
                self.stdout.write(f"  = {project.slug}: already there, left as it is")
                continue
            began = time.monotonic()
            try:
                with transaction.atomic():
                    counts = ProjectStory(project, anchor=anchor).tell()
            except (ChecksInvalid, ValidationError, PermissionDenied, ActionConflict) as exc:
                detail = getattr(exc, "errors", None) or exc
                raise CommandError(f"{project.slug}: the demo data does not hold: {detail}") from exc
            self.stdout.write(
                f"  + {project.slug}: {counts['points']:,} metric points, "
                f"{counts['attestations']} attestations, {counts['signoffs']} sign-offs, "
                f"{counts['scorecards']} scorecards ({time.monotonic() - began:.1f} s)"
            )

        self.health_targets(portfolio, url)
        self.stdout.write("Decisions now")
        for project in Project.objects.filter(slug__in=slugs).order_by("slug"):
            self.stdout.write("  " + decision_line(scorecard_refresh(project=project)))

        newest = MetricPoint.objects.filter(project__slug__in=slugs).aggregate(ts=Max("ts"))["ts"]
        if newest is not None and timezone.now() - newest > timedelta(hours=12):
            self.stdout.write(
                self.style.WARNING(
                    f"The demo's metric history ends {newest:%Y-%m-%d %H:%M} UTC; windows such as "
                    "24h empty out without new data. Run readiness_demo --reset for a fresh history."
                )
            )
        people = ", ".join(user["username"] for user in portfolio.users)
        self.stdout.write(self.style.SUCCESS(f"Demo portfolio ready in {time.monotonic() - started:.1f} s."))
        self.stdout.write(
            f"Log in at {url.rstrip('/')}/ as lea / {password} (leadership: the portfolio) or admin / "
            f"{password} (staff: also the admin console at /admin/); the project people ({people}) use "
            "the same password."
        )

    def health_targets(self, portfolio: Portfolio, url: str) -> None:
        """Live probes for the demo's model services. They are stand-ins, so each probes Readiness's own
        /healthz: once web, worker and beat run, the `api` target's health.up points keep arriving and
        the availability windows stay current. Re-running with another --url moves them."""
        live = f"{url.rstrip('/')}/healthz"
        projects = Project.objects.filter(
            slug__in=[p.slug for p in portfolio.projects if p.metric_profile()["health_latency"] is not None]
        ).exclude(stage=Stage.RETIRED)
        for project in projects:
            HealthCheck.objects.update_or_create(
                project=project,
                name=HEALTH_LABELS["target"],
                defaults={"url": live, "expected_status": 200, "timeout": 2.0, "interval": 60},
            )
        self.stdout.write(f"Health checks: {len(projects)} demo targets probe {live} every 60 s")

    def people(self, portfolio: Portfolio, password: str) -> None:
        report = checks_import(
            document=portfolio.people_document(), dry_run=False, actor=None, actor_label=ACTOR_LABEL
        )
        self.stdout.write(f"  {report.summary()}")
        model = get_user_model()
        admin, _ = model.objects.get_or_create(
            username="admin", defaults={"email": "admin@example.com", "first_name": "Admin"}
        )
        admin.is_staff = admin.is_superuser = admin.is_active = True
        admin.save(update_fields=["is_staff", "is_superuser", "is_active"])
        leader, _ = model.objects.get_or_create(
            username="lea",
            defaults={"email": "lea.fischer@example.com", "first_name": "Lea", "last_name": "Fischer"},
        )
        leader.groups.add(Group.objects.get_or_create(name=LEADERSHIP_GROUP)[0])
        usernames = ["admin", "lea", *(user["username"] for user in portfolio.users)]
        # One hash for everyone: hashing is deliberately slow, and these are demo accounts.
        model.objects.filter(username__in=usernames).update(password=make_password(password))
        self.stdout.write(f"  admin (staff), lea (leadership) and {len(usernames) - 2} project people")


def decision_line(scorecard: Scorecard) -> str:
    project = scorecard.project
    blockers = scorecard.payload["blockers"]
    shown = [
        " ".join(part for part in (b["dimension"], b["criterion"], b["status"]) if part) for b in blockers
    ]
    if len(shown) > 4:
        shown[3:] = [f"… {len(shown) - 3} more"]
    what = "; ".join(shown)
    count = f"{len(blockers)} blocker{'' if len(blockers) == 1 else 's'}"
    return f"{project.slug:<26} {project.stage:<10} {scorecard.decision:<6} {count}" + (
        f": {what}" if what else ""
    )


class ProjectStory:
    """Plays one demo project's story through the services, oldest moment first."""

    def __init__(self, project: DemoProject, *, anchor: datetime) -> None:
        self.demo = project
        self.story = project.story
        self.anchor = anchor
        self.project: Project | None = None

    def days_ago(self, days: float, hours: float = 0) -> datetime:
        return self.anchor - timedelta(days=days) + timedelta(hours=hours)

    @contextmanager
    def at(self, moment: datetime) -> Iterator[None]:
        """Run services as if it were ``moment``.

        The services read the clock through ``timezone.now()``: setting it tells weeks of a project's
        life in seconds, with every evaluation, waiver decision and stage change at its moment. Rows
        stamped by a model default keep the real clock, so they are moved to the moment afterwards.
        """
        marks = {model: model.objects.aggregate(pk=Max("pk"))["pk"] or 0 for model, _, _ in STAMPED}
        with mock.patch.object(timezone, "now", return_value=moment):
            yield
        for model, field, path in STAMPED:
            model.objects.filter(**{path: self.demo.slug}, pk__gt=marks[model]).update(**{field: moment})

    def owner(self, dimension: str) -> Any:
        assert self.project is not None
        return self.project.owner(dimension)

    def refresh(self, moment: datetime) -> None:
        assert self.project is not None
        scorecard_refresh(project=self.project, now=moment)

    # --- the story ---------------------------------------------------------------------------------

    def tell(self) -> dict[str, int]:
        created = self.days_ago(self.demo.stages[0][1])
        with self.at(created):
            checks_import(
                document=project_document(self.demo, anchor=self.anchor),
                dry_run=False,
                actor=None,
                actor_label=ACTOR_LABEL,
            )
        self.project = Project.objects.get(slug=self.demo.slug)
        Project.objects.filter(pk=self.project.pk).update(created_at=created, stage_changed_at=created)
        points = metric_points(project=self.demo, project_id=self.project.pk, anchor=self.anchor)
        MetricPoint.objects.bulk_create(points, batch_size=5000)
        rollups_mark((point.project_id, point.metric, point.ts) for point in points)

        events = sorted(self.events(), key=lambda event: (event[0], event[1]))
        for moment, _, play in events:
            play(moment)
        return {
            "points": len(points),
            "attestations": Attestation.objects.filter(criterion__project=self.project).count(),
            "signoffs": SignOff.objects.filter(project=self.project).count(),
            "scorecards": Scorecard.objects.filter(project=self.project).count(),
        }

    def events(self) -> Iterator[Event]:
        story, seq = self.story, itertools.count()
        stages = self.demo.stages
        for stage, days in stages[1:]:
            yield self.days_ago(days), next(seq), lambda m, stage=stage: self.stage(m, stage)

        # Attestation sessions: each responsible person attests their dimension, an hour apart. A
        # prototype's team works towards its pilot: the production-only checks come later.
        criteria = Criterion.objects.filter(project=self.project, kind=Kind.ATTESTATION)
        if self.demo.stage == "prototype":
            criteria = criteria.filter(stage="pilot")
        skipped = set(story.get("missing") or ()) | set(story.get("automated") or ())
        only = set(story["only"]) if "only" in story else None
        for index, dimension in enumerate(DIMENSIONS):
            keys = [
                c.key
                for c in criteria
                if c.dimension == dimension and c.key not in skipped and (only is None or c.key in only)
            ]
            if keys:
                moment = self.days_ago(story["attest"], hours=1 + index)
                yield moment, next(seq), lambda m, d=dimension, k=keys: self.attest(m, d, k)
        if story.get("automated"):
            moment = self.days_ago(story["attest"], hours=5)
            yield moment, next(seq), lambda m: self.attest_by_pipeline(m, story["automated"])

        for item in story.get("not_applicable") or ():
            moment = self.days_ago(item["days_ago"], hours=2)
            yield moment, next(seq), lambda m, item=item: self.not_applicable(m, item)
        for item in story.get("waivers") or ():
            moment = self.days_ago(item["days_ago"], hours=3)
            yield moment, next(seq), lambda m, item=item: self.waiver(m, item)
        for index, (dimension, days) in enumerate((story.get("signoffs") or {}).items()):
            moment = self.days_ago(days, hours=6 + index / 3)
            yield moment, next(seq), lambda m, d=dimension: self.signoff(m, d)

        # The daily evaluations of an active project (a retired one is no longer evaluated).
        retired = dict(stages).get("retired")
        for days in range(HISTORY_DAYS, 0, -1):
            if days <= stages[0][1] and (retired is None or days > retired):
                yield self.days_ago(days), next(seq), self.refresh

    # --- what people and pipelines do ------------------------------------------------------------

    def stage(self, moment: datetime, stage: str) -> None:
        assert self.project is not None
        with self.at(moment):
            # The product manager moves the project on once the stage's review is done.
            project_set_stage(project=self.project, stage=stage, by=self.owner("product"))

    def criterion(self, key: str) -> Criterion:
        return Criterion.objects.select_related("project").get(project=self.project, key=key)

    def attest(self, moment: datetime, dimension: str, keys: list[str]) -> None:
        for index, key in enumerate(keys):
            step = moment + timedelta(minutes=4 * index)
            with self.at(step):
                attestation_create(
                    criterion=self.criterion(key),
                    by=self.owner(dimension),
                    evidence_url=f"https://wiki.example.com/ai/{self.demo.slug}/{key.replace('_', '-')}",
                    note=f"Reviewed for the {self.demo.slug} {dimension.replace('_', ' ')} review.",
                )
            # Each action re-evaluates at once; this one sees the attestation at its moment.
            self.refresh(step)

    def attest_by_pipeline(self, moment: datetime, keys: list[str]) -> None:
        assert self.project is not None
        token = ProjectToken.objects.filter(project=self.project, name=CI_TOKEN_NAME).first()
        if token is None:
            with self.at(moment):
                # The secret is not needed afterwards: the demo calls the service the API would.
                token, _ = token_create(
                    project=self.project,
                    name=CI_TOKEN_NAME,
                    scopes=["attest", "metrics:write", "scorecard:read"],
                    created_by=self.owner("engineering"),
                )
        for index, key in enumerate(keys):
            step = moment + timedelta(minutes=1 + index)
            with self.at(step):
                attestation_create(
                    criterion=self.criterion(key),
                    token=token,
                    evidence_url=f"https://ci.example.com/{self.demo.slug}/pipelines/{4810 + index}",
                    note="Checked on every training run by the CI pipeline.",
                )
            self.refresh(step)

    def not_applicable(self, moment: datetime, item: dict[str, Any]) -> None:
        with self.at(moment):
            criterion_mark_not_applicable(
                criterion=self.criterion(item["key"]),
                by=self.owner(item["by"]),
                reason=" ".join(item["reason"].split()),
            )
        self.refresh(moment)

    def waiver(self, moment: datetime, item: dict[str, Any]) -> None:
        users = get_user_model().objects
        with self.at(moment):
            waiver = waiver_request(
                criterion=self.criterion(item["key"]),
                by=users.get(username=item["requested_by"]),
                reason=" ".join(item["reason"].split()),
                expires_at=moment + timedelta(days=item["days"]),
                now=moment,
            )
        decided = moment + timedelta(hours=2)
        with self.at(decided):
            waiver_approve(waiver=waiver, by=users.get(username=item["approved_by"]))
        self.refresh(decided)

    def signoff(self, moment: datetime, dimension: str) -> None:
        assert self.project is not None
        with self.at(moment):
            signoff_create(
                project=self.project,
                dimension=dimension,
                by=self.owner(dimension),
                note="Reviewed the scorecard and the evidence; done by our definition.",
            )
        self.refresh(moment)
