"""Criteria and what judges them: attestations, waivers, sign-offs, and the scorecards they produce."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models, transaction
from django.db.models import F, OuterRef, Q
from django.utils import timezone

from readiness.projects.vocabulary import Dimension, Stage, choices_check

# The drift job's results and reference cache live in the drift package; importing them here is what
# registers them with the scoring app at load time (Django loads each app's ``models`` module), and the
# aliases re-export them for ``from readiness.scoring.models import DriftResult``.
from readiness.scoring.drift.models import DriftReference as DriftReference
from readiness.scoring.drift.models import DriftResult as DriftResult
from readiness.scoring.engine import parse_window

# Where each project stands (the portfolio's stored figures), registered like the drift models above.
from readiness.scoring.standings import BlockerTally as BlockerTally
from readiness.scoring.standings import Standing as Standing
from readiness.scoring.standings import StandingBlocker as StandingBlocker
from readiness.scoring.standings import WeeklyDecision as WeeklyDecision
from readiness.scoring.standings import WeeklyTally as WeeklyTally
from readiness.scoring.standings import standing_follow
from readiness.telemetry.provenance import SOURCE_KINDS

if TYPE_CHECKING:
    from readiness.projects.models import Project


class Kind(models.TextChoices):
    METRIC = "metric"
    DRIFT = "drift"
    ATTESTATION = "attestation"


class Severity(models.TextChoices):
    BLOCKER = "blocker"
    ADVISORY = "advisory"


class AppliesFrom(models.TextChoices):
    """The lowest target stage at which a criterion applies."""

    PILOT = Stage.PILOT.value
    PRODUCTION = Stage.PRODUCTION.value


class Aggregation(models.TextChoices):
    LATEST = "latest"
    MEAN = "mean"
    MIN = "min"
    MAX = "max"
    SUM = "sum"
    COUNT = "count"
    P50 = "p50"
    P90 = "p90"
    P95 = "p95"
    P99 = "p99"


class Op(models.TextChoices):
    GTE = ">="
    LTE = "<="


class DriftMethod(models.TextChoices):
    PSI = "psi"
    KS = "ks"


KEY_PATTERN = r"^[a-z][a-z0-9_]{0,79}$"
METRIC_PATTERN = r"^[a-z][a-z0-9_.:]{0,99}$"
WINDOW_PATTERN = r"^[1-9][0-9]{0,4}[mhd]$"
SOURCES_ATTESTATION = "only metric and drift criteria read points; an attestation has no sources"
SOURCES_RULE = f"a list of source kinds, each one of {', '.join(SOURCE_KINDS)}"


def source_kinds_validate(value: object) -> None:
    """A criterion's ``sources``: the kinds of points it accepts (PRODUCT.md §8); empty accepts all."""
    if not isinstance(value, list) or not all(isinstance(kind, str) for kind in value):
        raise ValidationError(f"must be {SOURCES_RULE}")
    unknown = [kind for kind in value if kind not in SOURCE_KINDS]
    if unknown:
        raise ValidationError(
            f"unknown source kind {unknown[0]!r}: each must be one of {', '.join(SOURCE_KINDS)}"
        )
    if len(set(value)) != len(value):
        raise ValidationError("lists a source kind twice")


def window_retention_error(window: str) -> str | None:
    """Why ``window`` reaches back further than Readiness keeps data (PRODUCT.md §9: a window may be at
    most the rollup retention), or None. A malformed window is left to the pattern check to report."""
    try:
        span = parse_window(window)
    except ValueError:
        return None
    days = settings.READINESS_ROLLUP_RETENTION_DAYS
    if span > timedelta(days=days):
        return (
            f"window {window} is longer than the {days}d that metric data is kept "
            "(READINESS_ROLLUP_RETENTION_DAYS): it would judge points that are gone"
        )
    return None


class CriterionDefinition(models.Model):
    """The fields that define a check; shared by a project's criteria and a template's criteria."""

    key = models.CharField(max_length=80, validators=[RegexValidator(KEY_PATTERN)])
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    dimension = models.CharField(max_length=16, choices=Dimension.choices)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    severity = models.CharField(max_length=16, choices=Severity.choices, default=Severity.BLOCKER)
    stage = models.CharField(max_length=16, choices=AppliesFrom.choices, default=AppliesFrom.PILOT)
    remediation = models.TextField(blank=True)
    # metric and drift
    metric = models.CharField(max_length=100, blank=True, validators=[RegexValidator(METRIC_PATTERN)])
    labels = models.JSONField(default=dict, blank=True)
    # The kinds of points it accepts, e.g. ["probe", "prometheus"]; empty: every kind (PRODUCT.md §8).
    sources = models.JSONField(
        default=list,
        blank=True,
        validators=[source_kinds_validate],
        help_text=f"Accept only points of these kinds ({', '.join(SOURCE_KINDS)}); empty accepts every kind.",
    )
    window = models.CharField(max_length=8, blank=True, validators=[RegexValidator(WINDOW_PATTERN)])
    # metric
    aggregation = models.CharField(max_length=8, choices=Aggregation.choices, blank=True)
    op = models.CharField(max_length=2, choices=Op.choices, blank=True)
    threshold = models.FloatField(null=True, blank=True)
    warn_threshold = models.FloatField(null=True, blank=True)
    min_samples = models.PositiveIntegerField(default=1, validators=[MinValueValidator(1)])
    # drift
    method = models.CharField(max_length=8, choices=DriftMethod.choices, blank=True)
    reference_start = models.DateTimeField(null=True, blank=True)
    reference_end = models.DateTimeField(null=True, blank=True)
    # attestation
    evidence_required = models.BooleanField(default=False)
    valid_for_days = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(3650)]
    )

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.key} ({self.dimension}, {self.kind})"

    def clean(self) -> None:
        # The database refuses a backwards reference period too (``*_drift_complete``), but as one
        # constraint of many fields; every full_clean (admin forms, template data files) names it here.
        super().clean()
        start, end = self.reference_start, self.reference_end
        if self.kind == Kind.DRIFT and start is not None and end is not None and start >= end:
            raise ValidationError(
                {"reference_end": f"the reference period must end after it starts ({start:%Y-%m-%d %H:%M})"}
            )
        if self.kind == Kind.ATTESTATION and self.sources:
            raise ValidationError({"sources": SOURCES_ATTESTATION})
        too_long = window_retention_error(self.window) if self.window else None
        if too_long:
            raise ValidationError({"window": too_long})

    @classmethod
    def definition_constraints(cls, prefix: str) -> list[models.BaseConstraint]:
        return [
            models.CheckConstraint(
                condition=choices_check("dimension", Dimension), name=f"{prefix}_dimension_valid"
            ),
            models.CheckConstraint(condition=choices_check("kind", Kind), name=f"{prefix}_kind_valid"),
            models.CheckConstraint(
                condition=choices_check("severity", Severity), name=f"{prefix}_severity_valid"
            ),
            models.CheckConstraint(
                condition=choices_check("stage", AppliesFrom), name=f"{prefix}_stage_valid"
            ),
            models.CheckConstraint(
                condition=~Q(kind=Kind.METRIC)
                | (
                    ~Q(metric="")
                    & Q(aggregation__in=Aggregation.values)
                    & Q(op__in=Op.values)
                    & Q(threshold__isnull=False)
                    & ~Q(window="")
                ),
                name=f"{prefix}_metric_complete",
            ),
            models.CheckConstraint(
                condition=~Q(kind=Kind.DRIFT)
                | (
                    ~Q(metric="")
                    & Q(method__in=DriftMethod.values)
                    & ~Q(window="")
                    & Q(reference_start__isnull=False)
                    & Q(reference_end__isnull=False)
                    & Q(reference_start__lt=F("reference_end"))
                ),
                name=f"{prefix}_drift_complete",
            ),
        ]


# --- Templates ------------------------------------------------------------------------------------


class Template(models.Model):
    """A named, versioned set of criteria definitions that can be applied to projects."""

    key = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    version = models.PositiveIntegerField(default=1)
    builtin = models.BooleanField(default=False, help_text="Loaded from Readiness's own data files.")
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return f"{self.name} (v{self.version})"


class TemplateCriterion(CriterionDefinition):
    template = models.ForeignKey(Template, on_delete=models.CASCADE, related_name="criteria")
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["template", "position", "id"]
        verbose_name_plural = "template criteria"
        constraints = [
            models.UniqueConstraint(fields=["template", "key"], name="template_criterion_key_unique"),
            *CriterionDefinition.definition_constraints("template_criterion"),
        ]


class AppliedTemplate(models.Model):
    """Which version of a template a project's criteria were copied from."""

    project = models.ForeignKey(
        "projects.Project", on_delete=models.CASCADE, related_name="applied_templates"
    )
    template = models.ForeignKey(Template, on_delete=models.CASCADE, related_name="applications")
    version = models.PositiveIntegerField()
    applied_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["project", "template"]
        constraints = [
            models.UniqueConstraint(fields=["project", "template"], name="applied_template_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.template.key} v{self.version}"


# --- Criteria and what judges them ----------------------------------------------------------------


class Criterion(CriterionDefinition):
    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="criteria")
    position = models.PositiveIntegerField(default=0)
    source_template = models.ForeignKey(
        Template, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Explicitly marked not applicable, with the reason (PRODUCT.md §1 "not_applicable").
    not_applicable_reason = models.TextField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["project", "position", "id"]
        verbose_name_plural = "criteria"
        constraints = [
            models.UniqueConstraint(fields=["project", "key"], name="criterion_key_unique_per_project"),
            *CriterionDefinition.definition_constraints("criterion"),
        ]


class Attestation(models.Model):
    """A person (or, through a token, a system) states that a criterion holds, with evidence."""

    criterion = models.ForeignKey(Criterion, on_delete=models.CASCADE, related_name="attestations")
    attested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    token = models.ForeignKey(
        "projects.ProjectToken", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Made by an automated system through the API: worth 1 point in the ML Test Score, not 0.5.
    automated = models.BooleanField(default=False)
    evidence_url = models.URLField(max_length=500, blank=True)
    note = models.TextField(blank=True)
    attested_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["criterion", "-attested_at", "-id"]
        indexes = [models.Index(fields=["criterion", "-attested_at"])]
        constraints = [
            # Someone must stand behind every attestation: a person or a project token.
            models.CheckConstraint(
                condition=Q(attested_by__isnull=False) | Q(token__isnull=False) | Q(automated=False),
                name="attestation_has_author",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.criterion.key} attested {self.attested_at:%Y-%m-%d}"

    @property
    def by(self) -> str:
        if self.attested_by is not None:
            return self.attested_by.get_username()
        if self.token is not None:
            return f"token:{self.token.name}"
        return "unknown"


MAX_WAIVER_DAYS = 90


class WaiverQuerySet(models.QuerySet["Waiver"]):
    def active(self, at: datetime) -> WaiverQuerySet:
        return self.filter(status=Waiver.Status.APPROVED, expires_at__gt=at)


class Waiver(models.Model):
    """A time-boxed exemption of one criterion; it wins over every other status while active."""

    class Status(models.TextChoices):
        PENDING = "pending"
        APPROVED = "approved"
        REJECTED = "rejected"

    criterion = models.ForeignKey(Criterion, on_delete=models.CASCADE, related_name="waivers")
    reason = models.TextField()
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    requested_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField()

    objects = WaiverQuerySet.as_manager()

    class Meta:
        ordering = ["-requested_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["pending", "approved", "rejected"]),
                name="waiver_status_valid",
            ),
            # Nobody approves their own waiver (PRODUCT.md §1).
            models.CheckConstraint(
                condition=Q(approved_by__isnull=True) | ~Q(approved_by=F("requested_by")),
                name="waiver_approver_not_requester",
            ),
            models.CheckConstraint(
                condition=~Q(status="approved") | Q(approved_by__isnull=False),
                name="waiver_approved_has_approver",
            ),
        ]

    def __str__(self) -> str:
        return f"waiver of {self.criterion.key} ({self.display_status})"

    @property
    def display_status(self) -> str:
        """pending, approved, rejected, or expired once past ``expires_at``."""
        if self.status != self.Status.REJECTED and timezone.now() >= self.expires_at:
            return "expired"
        return self.status

    @staticmethod
    def latest_allowed_expiry(requested_at: datetime) -> datetime:
        return requested_at + timedelta(days=MAX_WAIVER_DAYS)


class SignOff(models.Model):
    """The responsible person declares a dimension done, bound to its results at that moment."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="signoffs")
    dimension = models.CharField(max_length=16, choices=Dimension.choices)
    signed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    signed_at = models.DateTimeField(default=timezone.now)
    note = models.TextField(blank=True)
    # The dimension digest (criterion statuses) it was given on; when it differs, the sign-off is stale.
    digest = models.CharField(max_length=64)
    # The scorecard it was given on; SET_NULL so retention (or deleting a project) is never blocked.
    scorecard = models.ForeignKey(
        "scoring.Scorecard",
        on_delete=models.SET_NULL,
        related_name="signoffs",
        null=True,
        blank=True,
    )

    class Meta:
        ordering = ["project", "dimension", "-signed_at", "-id"]
        indexes = [models.Index(fields=["project", "dimension", "-signed_at"])]
        constraints = [
            models.CheckConstraint(
                condition=choices_check("dimension", Dimension), name="signoff_dimension_valid"
            ),
            # One sign-off per dimension per scorecard: signing twice on the same results adds nothing.
            models.UniqueConstraint(fields=["scorecard", "dimension"], name="signoff_once_per_scorecard"),
        ]

    def __str__(self) -> str:
        return f"{self.project.slug}/{self.dimension} signed by {self.signed_by} {self.signed_at:%Y-%m-%d}"


class Decision(models.TextChoices):
    GO = "go"
    NO_GO = "no_go"


# The parts of a blocker that lists of projects count by (the portfolio's top blockers and blocked
# dimensions); the rest of a blocker (its reason, its owner) is read from the scorecard itself.
SUMMARY_BLOCKER_KEYS = ("dimension", "criterion", "status")


def scorecard_summary(payload: dict[str, Any]) -> dict[str, Any]:
    """What a list of many projects shows of one scorecard (the portfolio's matrix, KPIs, blockers):
    per dimension its status, score and sign-off state, and each blocker's dimension, criterion and
    status. A few hundred bytes stored beside the payload, so such a list never reads (and PostgreSQL
    never decompresses) the full scorecard of ~17 kB a project."""
    dimensions = {}
    for name, result in (payload.get("dimensions") or {}).items():
        signoff = result.get("signoff") or {}
        dimensions[name] = {
            "status": result.get("status"),
            "score": result.get("score"),
            "signoff": signoff.get("state"),
        }
    blockers = [
        {key: blocker.get(key) for key in SUMMARY_BLOCKER_KEYS} for blocker in payload.get("blockers") or []
    ]
    return {"dimensions": dimensions, "blockers": blockers}


class ScorecardQuerySet(models.QuerySet["Scorecard"]):
    def latest_for(self, project: Project | OuterRef | int) -> ScorecardQuerySet:
        """The project's scorecards, newest first (ties by id, as the ``scorecard_project_latest``
        index orders them): ``.first()`` is its latest scorecard, ``.values(...)[:1]`` the same as a
        correlated subquery when ``project`` is ``OuterRef("pk")``."""
        return self.filter(project=project).order_by("-computed_at", "-id")


class Scorecard(models.Model):
    """An immutable snapshot of one evaluation. Stored when its digest changes, and daily."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="scorecards")
    target = models.CharField(max_length=16, choices=AppliesFrom.choices)
    decision = models.CharField(max_length=8, choices=Decision.choices)
    computed_at = models.DateTimeField(default=timezone.now)
    digest = models.CharField(max_length=64)
    # The full scorecard JSON of PRODUCT.md §3, as the API serves it.
    payload = models.JSONField()
    # The previous scorecard's decision, when this one changed it (a decision change event).
    previous_decision = models.CharField(max_length=8, choices=Decision.choices, blank=True)
    # scorecard_summary(payload), written with the scorecard: what the portfolio reads of it.
    summary = models.JSONField(default=dict, editable=False)

    objects = ScorecardQuerySet.as_manager()

    class Meta:
        ordering = ["-computed_at", "-id"]
        get_latest_by = ["computed_at", "id"]
        indexes = [
            # "The project's latest scorecard (as of a time)": the portfolio asks it per project and per
            # trend week. The id breaks ties exactly as the ORDER BY does, and on PostgreSQL the
            # included columns answer those probes from the index alone, without visiting the table.
            models.Index(
                fields=["project", "-computed_at", "-id"],
                include=["decision", "digest"],
                name="scorecard_project_latest",
            )
        ]
        constraints = [
            models.CheckConstraint(
                condition=choices_check("decision", Decision), name="scorecard_decision_valid"
            ),
            models.CheckConstraint(
                condition=choices_check("target", AppliesFrom), name="scorecard_target_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.project.slug} {self.decision} for {self.target} at {self.computed_at:%Y-%m-%d %H:%M}"

    def save(self, *args: object, **kwargs: object) -> None:
        # Scorecards are history: the app never edits one (only retention may delete old ones).
        if self.pk is not None and not kwargs.get("force_insert"):
            raise ValueError("Scorecards are immutable snapshots")
        self.summary = scorecard_summary(self.payload)
        # The project's standing follows in the same transaction: the portfolio never sees a scorecard
        # its figures do not count, nor figures of a scorecard rolled back.
        with transaction.atomic():
            super().save(*args, **kwargs)  # type: ignore[arg-type]
            standing_follow(self)

    @property
    def is_decision_change(self) -> bool:
        return bool(self.previous_decision) and self.previous_decision != self.decision
