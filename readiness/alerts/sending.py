"""Sending a delivery exactly once, or visibly perhaps once: claim, record the attempt, send through the
channel's transport, record the outcome.

Claim: ``UPDATE delivery SET state='sending', attempts=n+1, lease_expires_at=now+lease WHERE id=X AND
attempts=n AND (state='pending' AND next_attempt_at<=now OR state='sending' AND lease_expires_at<=now)``
must change exactly one row. Of two workers (a retried task, two sweeps, two beats), only one wins; the
other changes nothing and sends nothing. The lease is what a worker that died holding a claim leaves
behind: once it has run out, the delivery is claimed again, so nothing stalls forever. The outcome is
written with the same ``attempts`` in its WHERE, so a sender whose lease was taken over can never
overwrite the newer attempt's result.

Attempt: before the message leaves, the attempt is committed as ``started``, by an UPDATE that renews
the lease only while the claim is still this sender's; its outcome later replaces ``started``. A claim
whose lease ran out therefore tells how far its dead holder got:
- no attempt recorded: it died before sending anything. The delivery is claimed again and sent (the
  dead attempt is recorded ``lost``).
- an attempt still ``started``: it died, or was cut by its time limit, after the message may have left
  (between the mail server's acceptance and the commit of "sent", typically). A webhook is sent again:
  it carries the same ``Idempotency-Key``, so the receiver drops a repeat. An email is not, since
  inboxes do not reliably drop a repeated ``Message-ID``: the delivery becomes ``uncertain``, with
  the reason, shown and filterable in the admin console's deliveries and counted in
  ``readiness_notification_failures_total{failure="uncertain"}``, for a person to check.
The same doubt without a crash (the mail server got the whole message and its answer never came:
``UncertainError``, see readiness/alerts/smtp.py) makes the delivery ``uncertain`` at once.

Backoff schedule of transient failures (``retry_delay``): 30 s after the 1st failed attempt, then 60 s,
120 s, 240 s and 480 s; the 6th failed attempt (``MAX_ATTEMPTS``, about 15.5 min after the first) gives
up. Giving up, or any permanent error, fails the delivery, disables the channel and records its error.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from readiness.alerts.messages import message_compose
from readiness.alerts.models import Channel, Delivery, DeliveryAttempt
from readiness.alerts.services import delivery_enqueue, notification_failed_send
from readiness.alerts.transports import PermanentError, TransientError, UncertainError, transport_for

log = logging.getLogger(__name__)

BACKOFF_BASE = timedelta(seconds=30)
MAX_ATTEMPTS = 6
# Channels whose receivers drop a repeated message (webhooks: the Idempotency-Key), so a message
# that may have left is sent again. Email is not one: a second send may be a second email.
RESENDABLE_KINDS = frozenset({Channel.Kind.WEBHOOK})

LOST_BEFORE_SENDING = "the worker holding the claim stopped before sending anything; its lease ran out"
LOST_WHILE_SENDING = (
    "the worker stopped after the attempt began, before recording how it ended; its lease ran out. "
    "Sent again with the same Idempotency-Key, which the receiver may drop as a repeat"
)
UNCERTAIN = (
    "may have been sent: its worker stopped during the attempt, before recording the mail server's "
    "answer (its lease ran out). Not sent again, so as not to send it twice; check with the recipients"
)


def lease() -> timedelta:
    """How long a claim lives (READINESS_DELIVERY_LEASE_SECONDS, 2 minutes by default): well above the
    send task's hard time limit (60 s, see tasks.py), so a sender still running is killed by Celery long
    before anyone may presume it dead and send again."""
    return timedelta(seconds=settings.READINESS_DELIVERY_LEASE_SECONDS)


def retry_delay(attempt: int) -> timedelta:
    """The wait after failed attempt number ``attempt`` (1-based): 30 s doubling each time."""
    if attempt < 1:
        raise ValueError(f"attempts are numbered from 1; got {attempt}")
    return BACKOFF_BASE * 2 ** (attempt - 1)


def delivery_claim(*, delivery_id: int, now: datetime) -> Delivery | None:
    """Take the delivery for one attempt, or None when it is not due, someone else holds it, or it is
    an email whose lapsed claim had begun sending (``delivery_mark_uncertain`` settles that one)."""
    seen = Delivery.objects.filter(pk=delivery_id).values("state", "attempts", "channel__kind").first()
    if seen is None:
        return None
    retaking = seen["state"] == Delivery.State.SENDING
    if (
        retaking
        and seen["channel__kind"] not in RESENDABLE_KINDS
        and _started(delivery_id=delivery_id, number=seen["attempts"]).exists()
    ):
        return None
    claimable = Q(state=Delivery.State.PENDING, next_attempt_at__lte=now) | Q(
        state=Delivery.State.SENDING, lease_expires_at__lte=now
    )
    # Were the holder recording its attempt at this very moment, its UPDATE (attempt_start) holds the
    # row and renews the lease: this one then waits, finds the lease running again, and changes nothing.
    won = (
        Delivery.objects.filter(claimable, pk=delivery_id, attempts=seen["attempts"]).update(
            state=Delivery.State.SENDING, attempts=F("attempts") + 1, lease_expires_at=now + lease()
        )
        == 1
    )
    if not won:
        return None
    if retaking:
        # Its previous holder never reported: record that attempt as lost.
        began = _started(delivery_id=delivery_id, number=seen["attempts"]).update(
            outcome=DeliveryAttempt.Outcome.LOST, error=LOST_WHILE_SENDING
        )
        if not began:
            DeliveryAttempt.objects.create(
                delivery_id=delivery_id,
                number=seen["attempts"],
                started_at=now,
                outcome=DeliveryAttempt.Outcome.LOST,
                error=LOST_BEFORE_SENDING,
            )
    return Delivery.objects.select_related("channel__project").get(pk=delivery_id)


def delivery_mark_uncertain(*, delivery_id: int, now: datetime) -> bool:
    """Settle an email whose claim lapsed after its attempt began: ``uncertain``, never sent again.
    A conditional UPDATE, so of several workers finding it, one records it. Returns whether this call
    did."""
    lapsed = (
        Delivery.objects.filter(pk=delivery_id, state=Delivery.State.SENDING, lease_expires_at__lte=now)
        .exclude(channel__kind__in=RESENDABLE_KINDS)
        .values_list("attempts", flat=True)
        .first()
    )
    if lapsed is None or not _started(delivery_id=delivery_id, number=lapsed).exists():
        return False
    with transaction.atomic():
        settled = Delivery.objects.filter(
            pk=delivery_id, state=Delivery.State.SENDING, attempts=lapsed, lease_expires_at__lte=now
        ).update(state=Delivery.State.UNCERTAIN, lease_expires_at=None, last_error=UNCERTAIN)
        if not settled:
            return False
        _started(delivery_id=delivery_id, number=lapsed).update(
            outcome=DeliveryAttempt.Outcome.UNCERTAIN, error=UNCERTAIN
        )
    delivery = Delivery.objects.select_related("channel").get(pk=delivery_id)
    log.warning("delivery %s: %s", delivery_id, UNCERTAIN)
    notification_failed_send(delivery=delivery, error=UNCERTAIN, failure="uncertain")
    return True


def attempt_start(*, delivery: Delivery, now: datetime) -> bool:
    """Record (commit) the attempt before the message leaves, renewing the lease from ``now``, and only
    while the claim is still ours (same ``attempts``, lease not run out). Returns whether it is: a
    sender that stalled past its lease (a frozen machine) finds it retaken and sends nothing."""
    with transaction.atomic():
        held = Delivery.objects.filter(
            pk=delivery.pk, state=Delivery.State.SENDING, attempts=delivery.attempts, lease_expires_at__gt=now
        ).update(lease_expires_at=now + lease())
        if not held:
            return False
        DeliveryAttempt.objects.create(
            delivery=delivery,
            number=delivery.attempts,
            started_at=now,
            outcome=DeliveryAttempt.Outcome.STARTED,
        )
    return True


def delivery_send(*, delivery_id: int, now: datetime | None = None) -> str:
    """Claim the delivery and send it once. Returns what happened: ``sent``, ``retrying``, ``failed``,
    ``cancelled``, ``uncertain`` (an email the mail server may have accepted unbeknown to us: see the
    module's docstring) or ``not_claimed`` (not due, already sent, or being sent by someone else)."""
    now = now or timezone.now()
    began = time.perf_counter()
    delivery = delivery_claim(delivery_id=delivery_id, now=now)
    if delivery is None:
        return "uncertain" if delivery_mark_uncertain(delivery_id=delivery_id, now=now) else "not_claimed"
    channel = delivery.channel
    if delivery.attempts > MAX_ATTEMPTS:  # the attempts past the cap were lost with their workers
        return _give_up(
            delivery,
            now=now,
            elapsed=0.0,
            outcome=DeliveryAttempt.Outcome.PERMANENT,
            error=f"gave up after {delivery.attempts - 1} attempts; the last ones were lost",
        )
    if not channel.enabled:
        _finish(
            delivery,
            state=Delivery.State.CANCELLED,
            outcome=DeliveryAttempt.Outcome.CANCELLED,
            now=now,
            error="the channel is disabled",
        )
        return "cancelled"
    message = message_compose(delivery)
    # This send's clock: ``now`` moved on by the time really spent since the claim, so the lease
    # check sees a stalled sender as late as it really is (and tests may still pass their own ``now``).
    if not attempt_start(delivery=delivery, now=now + timedelta(seconds=time.perf_counter() - began)):
        log.warning("delivery %s: claim %s retaken before sending", delivery.pk, delivery.attempts)
        return "not_claimed"
    started = time.perf_counter()
    try:
        transport_for(channel).send(message)
    except TransientError as exc:
        elapsed = _ms(started)
        if delivery.attempts >= MAX_ATTEMPTS:
            return _give_up(
                delivery,
                now=now,
                elapsed=elapsed,
                error=f"gave up after {delivery.attempts} attempts; last: {exc}",
                outcome=DeliveryAttempt.Outcome.TRANSIENT,
            )
        delay = retry_delay(delivery.attempts)
        with transaction.atomic():
            if _finish(
                delivery,
                state=Delivery.State.PENDING,
                outcome=DeliveryAttempt.Outcome.TRANSIENT,
                now=now,
                elapsed=elapsed,
                error=str(exc),
                next_attempt_at=now + delay,
            ):
                # Harmless if it arrives early or twice: the claim waits for next_attempt_at.
                delivery_enqueue(delivery_id=delivery.pk, countdown=delay.total_seconds())
        notification_failed_send(delivery=delivery, error=str(exc), failure="transient")
        return "retrying"
    except PermanentError as exc:
        return _give_up(
            delivery, now=now, elapsed=_ms(started), error=str(exc), outcome=DeliveryAttempt.Outcome.PERMANENT
        )
    except UncertainError as exc:  # the same doubt as a worker dying there, known at once
        _finish(
            delivery,
            state=Delivery.State.UNCERTAIN,
            outcome=DeliveryAttempt.Outcome.UNCERTAIN,
            now=now,
            elapsed=_ms(started),
            error=str(exc),
        )
        log.warning("delivery %s: %s", delivery.pk, exc)
        notification_failed_send(delivery=delivery, error=str(exc), failure="uncertain")
        return "uncertain"
    _finish(
        delivery,
        state=Delivery.State.SENT,
        outcome=DeliveryAttempt.Outcome.SENT,
        now=now,
        elapsed=_ms(started),
        sent_at=timezone.now(),
    )
    return "sent"


def _started(*, delivery_id: int, number: int) -> QuerySet[DeliveryAttempt]:
    return DeliveryAttempt.objects.filter(
        delivery_id=delivery_id, number=number, outcome=DeliveryAttempt.Outcome.STARTED
    )


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def _give_up(delivery: Delivery, *, now: datetime, elapsed: float, error: str, outcome: str) -> str:
    with transaction.atomic():
        _finish(delivery, state=Delivery.State.FAILED, outcome=outcome, now=now, elapsed=elapsed, error=error)
        # A channel that cannot work until someone fixes it stops being tried, and says why.
        Channel.objects.filter(pk=delivery.channel_id).update(
            enabled=False, last_error=error, last_error_at=now
        )
    log.warning("notification channel %s disabled: %s", delivery.channel_id, error)
    notification_failed_send(delivery=delivery, error=error, failure="permanent")
    return "failed"


def _finish(
    delivery: Delivery,
    *,
    state: str,
    outcome: str,
    now: datetime,
    elapsed: float | None = None,
    error: str = "",
    next_attempt_at: datetime | None = None,
    sent_at: datetime | None = None,
) -> bool:
    """Record how the attempt ended and move the delivery on, if this attempt still holds the claim."""
    fields: dict[str, object] = {"state": state, "lease_expires_at": None, "last_error": error}
    if next_attempt_at is not None:
        fields["next_attempt_at"] = next_attempt_at
    if sent_at is not None:
        fields["sent_at"] = sent_at
    with transaction.atomic():
        # The attempt recorded before sending, if there was one (a cancellation sends nothing); if
        # whoever retook the claim already recorded it as lost, this late report is kept beside it.
        recorded = _started(delivery_id=delivery.pk, number=delivery.attempts).update(
            outcome=outcome, duration_ms=elapsed, error=error
        )
        if not recorded:
            DeliveryAttempt.objects.create(
                delivery=delivery,
                number=delivery.attempts,
                started_at=now,
                duration_ms=elapsed,
                outcome=outcome,
                error=error,
            )
        held = Delivery.objects.filter(
            pk=delivery.pk, state=Delivery.State.SENDING, attempts=delivery.attempts
        ).update(**fields)
    if not held:
        log.warning(
            "delivery %s: attempt %s finished after its claim was retaken", delivery.pk, delivery.attempts
        )
    return bool(held)
