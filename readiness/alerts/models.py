"""Notifications (PRODUCT.md §4): where they go (channels), what happened (events), and each message
sent for them (deliveries, with every attempt).

evaluation / expiry scan --same transaction--> Event rows (unique key per project)
    -> one Delivery per enabled channel (or the channel's open daily digest), one DeliveryItem per
       event and channel (unique: never two notifications for one event on one channel)
    -> on commit: send task -> claim (pending -> sending, with a lease) -> attempt recorded (started)
       -> transport -> sent | retry | failed
    A claim whose holder died after recording its attempt: a webhook is sent again (same
    Idempotency-Key), an email becomes ``uncertain`` instead (see readiness/alerts/sending.py).
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator, validate_email
from django.db import models
from django.db.models import Q
from django.utils import timezone

from readiness.projects.vocabulary import choices_check

# Webhooks are POSTed with httpx: only http(s) means anything there (no ftp://, no file://).
WEBHOOK_SCHEMES = ["http", "https"]


class Channel(models.Model):
    class Kind(models.TextChoices):
        EMAIL = "email"
        WEBHOOK = "webhook"

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="channels")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    # webhook: the URL; email: unused (see ``to``).
    url = models.URLField(
        max_length=500,
        blank=True,
        # Its own code: under the field's "invalid" code Django would swap in "Enter a valid URL.",
        # which an ftp:// URL (valid, just not http) would leave unexplained.
        validators=[
            URLValidator(
                schemes=WEBHOOK_SCHEMES, message="Enter an http:// or https:// URL.", code="not_http"
            )
        ],
    )
    to = models.JSONField(default=list, blank=True)  # email recipients
    enabled = models.BooleanField(default=True)
    # For noisy projects: no message per evaluation, one summary a day of everything that happened.
    digest = models.BooleanField(
        default=False, help_text="Send one daily summary instead of one message per evaluation."
    )
    # Written when a delivery fails for good, which also disables the channel.
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["project", "kind", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=["email", "webhook"]), name="channel_kind_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.kind}: {self.target}"

    @property
    def target(self) -> str:
        if self.kind == self.Kind.WEBHOOK:
            return self.url
        return ", ".join(self.to) if isinstance(self.to, list) else ""

    def clean(self) -> None:
        # The rules of a channel whatever writes it (admin form, inline, shell): a webhook needs its
        # URL and nothing else, an email channel at least one valid address and nothing else.
        errors: dict[str, str] = {}
        if self.kind == self.Kind.WEBHOOK:
            if not self.url:
                errors["url"] = "A webhook channel needs an http(s) URL."
            if self.to:
                errors["to"] = "Not used by webhook channels."
        elif self.kind == self.Kind.EMAIL:
            if self.url:
                errors["url"] = "Not used by email channels."
            if not isinstance(self.to, list) or not all(isinstance(a, str) for a in self.to):
                errors["to"] = "Recipients must be a list of email addresses."
            elif not self.to:
                errors["to"] = "An email channel needs at least one recipient."
            else:
                for address in self.to:
                    try:
                        validate_email(address)
                    except ValidationError:
                        errors["to"] = f"{address!r} is not an email address."
                        break
        if errors:
            raise ValidationError(errors)


class EventKind(models.TextChoices):
    DECISION_CHANGED = "decision_changed"
    CRITERION_REGRESSED = "criterion_regressed"
    EXPIRING = "expiring"
    DATA_MISSING = "data_missing"


class Event(models.Model):
    """Something a project's people must hear about. Recorded in the transaction that found it, with a
    key unique per project, so an evaluation retried or an expiry scan run twice records it once."""

    Kind = EventKind

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=24, choices=EventKind.choices)
    # What makes it one event: "decision:<scorecard>", "regressed:<scorecard>:<criterion>",
    # "missing:<scorecard>:<criterion>", "attestation_expiring:<attestation>", "waiver_expiring:<waiver>".
    key = models.CharField(max_length=200)
    # The evaluation that found it (for expiry: the newest scorecard at the scan); its blockers are
    # what the message shows. SET_NULL: retention may delete old scorecards.
    scorecard = models.ForeignKey(
        "scoring.Scorecard", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    criterion = models.CharField(max_length=80, blank=True)
    dimension = models.CharField(max_length=16, blank=True)
    owner = models.CharField(max_length=150, blank=True)  # the responsible person's username
    decision_before = models.CharField(max_length=8, blank=True)
    decision_after = models.CharField(max_length=8, blank=True)
    summary = models.TextField()
    details = models.JSONField(default=dict, blank=True)
    occurred_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [models.Index(fields=["project", "-occurred_at"], name="alerts_event_project_latest")]
        constraints = [
            models.UniqueConstraint(fields=["project", "key"], name="alerts_event_once_per_key"),
            models.CheckConstraint(
                condition=choices_check("kind", EventKind), name="alerts_event_kind_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind}: {self.summary}"


class DeliveryState(models.TextChoices):
    # A digest channel's open summary: events gather here until the daily send opens it.
    COLLECTING = "collecting"
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"  # its channel was disabled before it could go out
    # An email whose sender died after the attempt began, before recording how it ended: the mail
    # server may have accepted it. Not sent again (that could deliver it twice); a person checks.
    UNCERTAIN = "uncertain"


class Delivery(models.Model):
    """One message to one channel, carrying the events of one evaluation (or of one day, in digest
    mode). Sent by whoever claims it first: ``pending -> sending`` is a conditional UPDATE with a lease.
    """

    State = DeliveryState

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="deliveries")
    events = models.ManyToManyField(Event, through="DeliveryItem", related_name="deliveries")
    digest = models.BooleanField(default=False)
    state = models.CharField(max_length=16, choices=DeliveryState.choices, default=DeliveryState.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    # Not claimed before this time: the backoff of a transient failure.
    next_attempt_at = models.DateTimeField(default=timezone.now)
    # While sending: a claim older than this is presumed dead (its worker crashed) and may be retaken.
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "deliveries"
        indexes = [
            # The sweeper's question: what is due or holds a lapsed claim.
            models.Index(
                fields=["state", "next_attempt_at"],
                condition=Q(state__in=["pending", "sending"]),
                name="alerts_delivery_unfinished",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=choices_check("state", DeliveryState), name="alerts_delivery_state_valid"
            ),
            # One open digest per channel: two evaluations never start two summaries for one day.
            models.UniqueConstraint(
                fields=["channel"], condition=Q(state="collecting"), name="alerts_one_open_digest"
            ),
        ]

    def __str__(self) -> str:
        return f"delivery {self.pk} to {self.channel} ({self.state})"


class DeliveryItem(models.Model):
    """One event in one delivery. The channel is repeated here so the database itself refuses a
    second notification of one event on one channel."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="items")
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="items")
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["event", "channel"], name="alerts_one_notification_per_event"),
        ]

    def __str__(self) -> str:
        return f"event {self.event_id} in delivery {self.delivery_id}"


class AttemptOutcome(models.TextChoices):
    # Recorded (committed) before the message leaves; replaced by how it ended. Left so by a sender
    # that died in between: the message may have left.
    STARTED = "started"
    SENT = "sent"
    TRANSIENT = "transient"  # retried after a backoff
    PERMANENT = "permanent"  # the channel was disabled
    LOST = "lost"  # the worker holding the claim stopped before reporting (its lease ran out)
    CANCELLED = "cancelled"
    UNCERTAIN = "uncertain"  # an email that may have left: the delivery is not sent again


class DeliveryAttempt(models.Model):
    """Every try at sending a delivery, and how it ended."""

    Outcome = AttemptOutcome

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField(default=timezone.now)
    duration_ms = models.FloatField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=AttemptOutcome.choices)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["delivery", "number", "id"]
        constraints = [
            models.CheckConstraint(
                condition=choices_check("outcome", AttemptOutcome), name="alerts_attempt_outcome_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"attempt {self.number} of delivery {self.delivery_id}: {self.outcome}"
