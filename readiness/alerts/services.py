"""Workflows of notifications: record the events of an evaluation or an expiry scan together with the
deliveries that will carry them, open the daily digests, and re-enqueue what a lost message left.

Sending itself (claim, transport, retry, disable) is in ``readiness.alerts.sending``.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import OuterRef, Q, Subquery
from django.dispatch import Signal
from django.utils import timezone

from readiness.alerts.models import Channel, Delivery, DeliveryItem, Event
from readiness.alerts.rules import (
    EXPIRY_HORIZON,
    EventSpec,
    attestation_expiring,
    evaluation_events,
    is_expiring,
    waiver_expiring,
)
from readiness.projects.models import OWNER_FIELDS, Project
from readiness.projects.vocabulary import Stage
from readiness.publishing import publish
from readiness.scoring.models import Attestation, Criterion, Scorecard, Waiver

log = logging.getLogger(__name__)

# Sent on every failed delivery attempt, with ``delivery``, ``channel``, ``error`` (str) and
# ``failure``: ``transient`` (retried), ``permanent`` (the channel was disabled) or ``uncertain`` (an
# email that may or may not have left, not sent again). The hook for a "notifications failed" counter.
notification_failed = Signal()
FAILURES = ("transient", "permanent", "uncertain")

# A pending delivery is enqueued on commit; only one still due this long after its time was lost by
# the broker (or never published) and needs the sweeper. Long enough not to race the normal path.
SWEEP_GRACE = timedelta(seconds=30)
# Deliveries one sweep re-enqueues at most: a backlog drains over a few sweeps instead of one flood.
SWEEP_MAX = 500


def notification_failed_send(*, delivery: Delivery, error: str, failure: str) -> None:
    """Announce a failed attempt to whoever listens (metrics); a listener's error never breaks sending."""
    if failure not in FAILURES:
        raise ValueError(f"failure must be one of {', '.join(FAILURES)}; got {failure!r}")
    for _receiver, response in notification_failed.send_robust(
        sender=Delivery, delivery=delivery, channel=delivery.channel, error=error, failure=failure
    ):
        if isinstance(response, Exception):
            log.warning("a notification_failed receiver raised %r", response)


def delivery_enqueue(*, delivery_id: int, countdown: float = 0.0) -> None:
    """Queue the send of a delivery once the current transaction commits (at once outside one)."""
    from readiness.alerts.tasks import delivery_send

    # The delivery is committed: a broker outage must not fail the evaluation that made it.
    transaction.on_commit(
        lambda: publish(
            delivery_send, what=f"delivery {delivery_id}", args=(delivery_id,), countdown=countdown
        )
    )


# --- Recording events -----------------------------------------------------------------------------


def notifications_record_evaluation(
    *, project: Project, scorecard: Scorecard, previous: Scorecard | None
) -> list[Event]:
    """Record the events between the previous stored scorecard and the new one, with their deliveries.

    Called (``scorecard_stored``) by ``scorecard_refresh`` inside the transaction that stores the
    scorecard, holding the project's row lock: the events exist exactly when the scorecard does.
    """
    specs = evaluation_events(
        previous=previous.payload if previous is not None else None,
        current=scorecard.payload,
        scorecard_id=scorecard.pk,
        owners=project.owner_usernames(),
    )
    return _events_record(
        project=project,
        specs=specs,
        scorecard=scorecard,
        decision_before=previous.decision if previous is not None else "",
        now=scorecard.computed_at,
    )


def scorecard_stored_receiver(
    *, project: Project, scorecard: Scorecard, previous: Scorecard | None, **_signal: Any
) -> None:
    notifications_record_evaluation(project=project, scorecard=scorecard, previous=previous)


def _events_record(
    *,
    project: Project,
    specs: Iterable[EventSpec],
    scorecard: Scorecard | None,
    decision_before: str,
    now: datetime,
) -> list[Event]:
    # The caller holds the project's row lock, so no other evaluation or scan of this project runs
    # between this check and the insert; the unique (project, key) constraint is the backstop.
    specs = list(specs)
    if not specs:  # most evaluations: nothing to look up, nothing to send
        return []
    known = set(
        Event.objects.filter(project=project, key__in=[spec.key for spec in specs]).values_list(
            "key", flat=True
        )
    )
    decision_after = scorecard.decision if scorecard is not None else ""
    events = Event.objects.bulk_create(
        Event(
            project=project,
            kind=spec.kind,
            key=spec.key,
            scorecard=scorecard,
            criterion=spec.criterion,
            dimension=spec.dimension,
            owner=spec.owner,
            decision_before=decision_before or decision_after,
            decision_after=decision_after,
            summary=spec.summary,
            details=spec.details,
            occurred_at=now,
        )
        for spec in specs
        if spec.key not in known
    )
    if events:
        deliveries_create(project=project, events=events, now=now)
    return events


def deliveries_create(*, project: Project, events: list[Event], now: datetime) -> list[Delivery]:
    """One delivery per enabled channel carrying all the events (the events of one evaluation go out
    as one message per channel); a digest channel's events join its open daily summary instead."""
    pending: list[Delivery] = []
    items: list[DeliveryItem] = []
    for channel in Channel.objects.filter(project=project, enabled=True):
        if channel.digest:
            # Locked, and re-checked as still collecting: the daily send flips it to pending with a
            # conditional UPDATE that waits for this lock, so it never sends a digest while events
            # are being added, and an event added after the flip starts tomorrow's digest.
            delivery = (
                Delivery.objects.select_for_update().filter(channel=channel, state=Delivery.State.COLLECTING)
            ).first() or Delivery.objects.create(
                channel=channel, digest=True, state=Delivery.State.COLLECTING, created_at=now
            )
        else:
            delivery = Delivery.objects.create(channel=channel, created_at=now, next_attempt_at=now)
            pending.append(delivery)
        items += [DeliveryItem(delivery=delivery, event=event, channel=channel) for event in events]
    DeliveryItem.objects.bulk_create(items)
    for delivery in pending:
        delivery_enqueue(delivery_id=delivery.pk)
    return pending


# --- Expiry scan ----------------------------------------------------------------------------------


def _lock_project(project_id: int) -> Project | None:
    # The same lock as scorecard_refresh: a scan and an evaluation of one project never interleave.
    if Project.objects.lock(project_id) is None:
        return None
    return Project.objects.select_related(*OWNER_FIELDS.values()).get(pk=project_id)


def expiring_find(*, now: datetime) -> dict[int, list[EventSpec]]:
    """Attestations (the newest of each criterion with a re-attestation cadence) and approved waivers
    ending within the next 7 days, as expiry event specs by project id."""
    found: dict[int, list[EventSpec]] = defaultdict(list)
    owners: dict[int, dict[str, str | None]] = {}

    def owner(project: Project, dimension: str) -> str | None:
        if project.pk not in owners:
            owners[project.pk] = project.owner_usernames()
        return owners[project.pk][dimension]

    newest = Attestation.objects.filter(criterion=OuterRef("pk"), attested_at__lte=now).order_by(
        "-attested_at", "-id"
    )
    criteria = (
        Criterion.objects.filter(valid_for_days__isnull=False, not_applicable_reason__isnull=True)
        .exclude(project__stage=Stage.RETIRED)
        .annotate(attestation_id=Subquery(newest.values("pk")[:1]))
        .filter(attestation_id__isnull=False)
        .select_related("project", *(f"project__{field}" for field in OWNER_FIELDS.values()))
    )
    attestations = Attestation.objects.select_related("attested_by", "token").in_bulk(
        [criterion.attestation_id for criterion in criteria]
    )
    for criterion in criteria:
        attestation = attestations[criterion.attestation_id]
        expires_at = attestation.attested_at + timedelta(days=criterion.valid_for_days or 0)
        if is_expiring(expires_at, now):
            found[criterion.project_id].append(
                attestation_expiring(
                    attestation_id=attestation.pk,
                    criterion=criterion.key,
                    dimension=criterion.dimension,
                    owner=owner(criterion.project, criterion.dimension),
                    by=attestation.by,
                    expires_at=expires_at,
                    now=now,
                )
            )
    waivers = (
        Waiver.objects.filter(
            status=Waiver.Status.APPROVED, expires_at__gt=now, expires_at__lte=now + EXPIRY_HORIZON
        )
        .exclude(criterion__project__stage=Stage.RETIRED)
        .select_related(
            "criterion__project", *(f"criterion__project__{field}" for field in OWNER_FIELDS.values())
        )
    )
    for waiver in waivers:
        criterion = waiver.criterion
        found[criterion.project_id].append(
            waiver_expiring(
                waiver_id=waiver.pk,
                criterion=criterion.key,
                dimension=criterion.dimension,
                owner=owner(criterion.project, criterion.dimension),
                expires_at=waiver.expires_at,
                now=now,
            )
        )
    return found


def expiring_scan(*, now: datetime | None = None) -> int:
    """Record an expiry event for everything ending within 7 days that has none yet, one transaction
    (and so one message per channel) per project. Returns how many events were recorded."""
    now = now or timezone.now()
    recorded = 0
    for project_id, specs in expiring_find(now=now).items():
        with transaction.atomic():
            project = _lock_project(project_id)
            if project is None:  # deleted since the scan read it
                continue
            latest = Scorecard.objects.latest_for(project).first()
            recorded += len(
                _events_record(
                    project=project,
                    specs=specs,
                    scorecard=latest,
                    decision_before=latest.decision if latest is not None else "",
                    now=now,
                )
            )
    return recorded


# --- Digests and the sweeper ----------------------------------------------------------------------


def digests_open(*, now: datetime | None = None) -> int:
    """The daily send: every open digest becomes a pending delivery and is enqueued. The flip is a
    conditional UPDATE (collecting -> pending), so two runs of the task open each digest once."""
    now = now or timezone.now()
    opened = 0
    for delivery_id in Delivery.objects.filter(state=Delivery.State.COLLECTING).values_list("pk", flat=True):
        flipped = Delivery.objects.filter(pk=delivery_id, state=Delivery.State.COLLECTING).update(
            state=Delivery.State.PENDING, next_attempt_at=now
        )
        if flipped:
            opened += 1
            delivery_enqueue(delivery_id=delivery_id)
    return opened


def deliveries_sweep(*, now: datetime | None = None) -> int:
    """Re-enqueue deliveries a lost message left behind: pending and due for a while, or claimed by a
    worker whose lease has run out (it died). Enqueuing twice is harmless: sending claims first."""
    now = now or timezone.now()
    stuck = Q(state=Delivery.State.PENDING, next_attempt_at__lte=now - SWEEP_GRACE) | Q(
        state=Delivery.State.SENDING, lease_expires_at__lte=now
    )
    ids = list(
        Delivery.objects.filter(stuck).order_by("next_attempt_at").values_list("pk", flat=True)[:SWEEP_MAX]
    )
    for delivery_id in ids:
        delivery_enqueue(delivery_id=delivery_id)
    return len(ids)
