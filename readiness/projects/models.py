"""Teams, projects with their stage history and responsible people, and project API tokens."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import connection, models
from django.db.models import Q
from django.utils import timezone

from readiness.projects.vocabulary import (
    DIMENSION_DEFINITIONS,
    Dimension,
    RiskTier,
    Stage,
    choices_check,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser


class Team(models.Model):
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="readiness_teams", blank=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.name


class ProjectQuerySet(models.QuerySet["Project"]):
    def visible_to(self, user: AbstractBaseUser | AnonymousUser) -> ProjectQuerySet:
        """Projects a person may read (PRODUCT.md §2); the others do not exist for them."""
        if not user.is_authenticated or not user.is_active:
            return self.none()
        if user.is_staff or user.groups.filter(name=LEADERSHIP_GROUP).exists():
            return self
        return self.filter(team__members=user).distinct()

    def active(self) -> ProjectQuerySet:
        return self.exclude(stage=Stage.RETIRED)

    def lock(self, pk: int) -> Project | None:
        """Lock the project's row (``SELECT ... FOR UPDATE``) until the transaction ends: the one lock
        that makes an evaluation, an expiry scan and a template apply of a project take turns. Returns
        the row with only ``evaluated_at`` loaded (what the evaluation reads under the lock), or None
        when the project is gone."""
        return self.select_for_update().filter(pk=pk).only("evaluated_at").first()


LEADERSHIP_GROUP = "leadership"
OWNER_FIELDS: dict[str, str] = {dim: f"owner_{dim}" for dim in Dimension.values}


class Project(models.Model):
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="projects")
    stage = models.CharField(max_length=16, choices=Stage.choices, default=Stage.PROTOTYPE)
    risk_tier = models.CharField(max_length=16, choices=RiskTier.choices, default=RiskTier.MINIMAL)
    target_date = models.DateField(null=True, blank=True)
    require_signoff_for_pilot = models.BooleanField(default=False)
    # Per-dimension override of the definition-of-done statement; empty = the default of PRODUCT.md §1.
    definitions = models.JSONField(default=dict, blank=True)
    owner_data_science = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    owner_engineering = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    owner_product = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    owner_security = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    stage_changed_at = models.DateTimeField(default=timezone.now)
    # Set when a re-evaluation is queued and cleared when it starts: a burst of pushes flips it once,
    # so the burst costs one evaluation, not one per batch.
    evaluation_pending = models.BooleanField(default=False, editable=False)
    # When the pending evaluation was queued: a request whose message was lost (broker down at publish
    # time) would otherwise leave the flag set for good and the project never evaluated again.
    evaluation_requested_at = models.DateTimeField(null=True, blank=True, editable=False)
    # When an evaluation last confirmed the latest scorecard (storing a new one or finding the same
    # digest). The deploy gate answers from that scorecard only while this is recent: an unchanged
    # project stores no new scorecard, so its scorecard's own age says nothing about freshness.
    evaluated_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = ProjectQuerySet.as_manager()

    class Meta:
        ordering = ["slug"]
        constraints = [
            models.CheckConstraint(condition=choices_check("stage", Stage), name="project_stage_valid"),
            models.CheckConstraint(
                condition=choices_check("risk_tier", RiskTier), name="project_risk_tier_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def owner(self, dimension: str) -> AbstractBaseUser | None:
        return getattr(self, OWNER_FIELDS[dimension])

    def owner_usernames(self) -> dict[str, str | None]:
        return {
            dim: (user.get_username() if (user := self.owner(dim)) is not None else None)
            for dim in Dimension.values
        }

    def definition(self, dimension: str) -> str:
        return self.definitions.get(dimension) or DIMENSION_DEFINITIONS[dimension][1]

    def is_member(self, user: AbstractBaseUser | AnonymousUser) -> bool:
        return bool(user.is_authenticated) and self.team.members.filter(pk=user.pk).exists()

    def may_act_in(self, user: AbstractBaseUser | AnonymousUser, dimension: str) -> bool:
        """The responsible person of a dimension (or an admin) acts in that dimension only."""
        if not user.is_authenticated:
            return False
        return bool(user.is_staff) or getattr(self, f"{OWNER_FIELDS[dimension]}_id") == user.pk


# A queued evaluation normally starts within seconds. One still pending after this long had its message
# lost (the broker was down when it was published): the next request, or the periodic tick at the
# latest, queues it again. Re-queueing one that was merely slow costs one harmless extra evaluation.
LOST_EVALUATION_REQUEST = timedelta(minutes=10)

# Names come from the model; every value is a parameter.
EVALUATION_FLIP_SQL = (
    f"UPDATE {Project._meta.db_table} SET evaluation_pending = %s, evaluation_requested_at = %s "  # noqa: S608
    "WHERE id = %s AND (NOT evaluation_pending OR evaluation_requested_at < %s) RETURNING id"
)


def evaluation_flip_statement(*, project_id: int, now: datetime) -> tuple[str, list[object]]:
    """The conditional UPDATE that records a project's evaluation request, as SQL and parameters: it
    sets ``evaluation_pending`` and returns the project's id only when the flag was clear (or its
    request lost), so among a burst of requests exactly one flips it and queues the evaluation. Raw,
    because it runs for most single-point pushes: scoring runs it alone
    (readiness/scoring/requests.py), a small push inside its write's one statement
    (readiness/telemetry/services.py)."""
    requested_at = Project._meta.get_field("evaluation_requested_at")
    return EVALUATION_FLIP_SQL, [
        True,
        requested_at.get_db_prep_value(now, connection),
        project_id,
        requested_at.get_db_prep_value(now - LOST_EVALUATION_REQUEST, connection),
    ]


class StageChange(models.Model):
    """One entry of a project's stage history: the portfolio derives time in stage from these."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="stage_changes")
    from_stage = models.CharField(max_length=16, choices=Stage.choices, blank=True)
    to_stage = models.CharField(max_length=16, choices=Stage.choices)
    changed_at = models.DateTimeField(default=timezone.now)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["project", "changed_at", "id"]
        indexes = [models.Index(fields=["project", "changed_at"])]

    def __str__(self) -> str:
        return f"{self.project.slug}: {self.from_stage or '∅'} → {self.to_stage}"


class TokenScope(models.TextChoices):
    METRICS_WRITE = "metrics:write"
    SCORECARD_READ = "scorecard:read"
    ATTEST = "attest"


LAST_USED_RESOLUTION = timedelta(minutes=1)
TOKEN_PREFIX = "rdy_"  # noqa: S105 -- a public prefix, not a secret


def token_touch(*, pk: int, last_used_at: datetime | None) -> datetime | None:
    """Record a token's use, at most once a minute: a write per request would turn every metrics push
    into two writes and make one hot row a point of lock contention. Returns the new last_used_at."""
    now = timezone.now()
    if last_used_at is not None and now - last_used_at < LAST_USED_RESOLUTION:
        return last_used_at
    ProjectToken.objects.filter(pk=pk).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION)
    ).update(last_used_at=now)
    return now


def hash_token_secret(secret: str) -> str:
    # Tokens are 256-bit random strings, so a fast unsalted hash is enough: there is nothing to
    # brute-force, and a lookup by hash stays one indexed query per request.
    return hashlib.sha256(secret.encode()).hexdigest()


class ProjectTokenQuerySet(models.QuerySet["ProjectToken"]):
    def usable(self) -> ProjectTokenQuerySet:
        return self.filter(revoked_at__isnull=True)

    def for_secret(self, secret: str) -> ProjectToken | None:
        if not secret.startswith(TOKEN_PREFIX):
            return None
        return self.usable().select_related("project").filter(hashed_secret=hash_token_secret(secret)).first()


class ProjectToken(models.Model):
    """A project API token: only its hash is stored; the secret is shown once at creation."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="tokens")
    name = models.CharField(max_length=100)
    hashed_secret = models.CharField(max_length=64, unique=True, editable=False)
    # The first characters of the secret, safe to show, so people can tell their tokens apart.
    hint = models.CharField(max_length=12, editable=False)
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ProjectTokenQuerySet.as_manager()

    class Meta:
        ordering = ["project", "name"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="token_name_unique_per_project"),
        ]

    def __str__(self) -> str:
        return f"{self.project.slug}/{self.name}"

    @staticmethod
    def new_secret() -> str:
        return TOKEN_PREFIX + secrets.token_urlsafe(32)

    def set_secret(self, secret: str) -> None:
        self.hashed_secret = hash_token_secret(secret)
        self.hint = secret[: len(TOKEN_PREFIX) + 4]

    def touch(self) -> None:
        self.last_used_at = token_touch(pk=self.pk, last_used_at=self.last_used_at)

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None


VALID_SCOPES = frozenset(TokenScope.values)
