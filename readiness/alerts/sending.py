"""Sending a delivery exactly once: claim, send through the channel's transport, record the outcome.

Claim: ``UPDATE delivery SET state='sending', attempts=n+1, lease_expires_at=now+lease WHERE id=X AND
attempts=n AND (state='pending' AND next_attempt_at<=now OR state='sending' AND lease_expires_at<=now)``
must change exactly one row. Of two workers (a retried task, two sweeps, two beats), only one wins; the
other changes nothing and sends nothing. The lease is what a worker that died holding a claim leaves
behind: once it has run out, the delivery is claimed again (and the lost attempt recorded), so nothing
stalls forever. The outcome is written with the same ``attempts`` in its WHERE, so a sender whose lease
was taken over can never overwrite the newer attempt's result.

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
from django.db.models import F, Q
from django.utils import timezone

from readiness.alerts.messages import message_compose
from readiness.alerts.models import Channel, Delivery, DeliveryAttempt
from readiness.alerts.services import delivery_enqueue, notification_failed_send
from readiness.alerts.transports import PermanentError, TransientError, transport_for

log = logging.getLogger(__name__)

BACKOFF_BASE = timedelta(seconds=30)
MAX_ATTEMPTS = 6


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
    """Take the delivery for one attempt, or None when it is not due or someone else holds it."""
    seen = Delivery.objects.filter(pk=delivery_id).values("state", "attempts").first()
    if seen is None:
        return None
    claimable = Q(state=Delivery.State.PENDING, next_attempt_at__lte=now) | Q(
        state=Delivery.State.SENDING, lease_expires_at__lte=now
    )
    won = (
        Delivery.objects.filter(claimable, pk=delivery_id, attempts=seen["attempts"]).update(
            state=Delivery.State.SENDING, attempts=F("attempts") + 1, lease_expires_at=now + lease()
        )
        == 1
    )
    if not won:
        return None
    if seen["state"] == Delivery.State.SENDING:
        # Its previous holder never reported: record that attempt as lost. The message may or may
        # not have left; the webhook's Idempotency-Key lets a receiver drop the repeat.
        DeliveryAttempt.objects.create(
            delivery_id=delivery_id,
            number=seen["attempts"],
            started_at=now,
            outcome=DeliveryAttempt.Outcome.LOST,
            error="the worker holding the claim stopped before reporting; its lease ran out",
        )
    return Delivery.objects.select_related("channel__project").get(pk=delivery_id)


def delivery_send(*, delivery_id: int, now: datetime | None = None) -> str:
    """Claim the delivery and send it once. Returns what happened: ``sent``, ``retrying``, ``failed``,
    ``cancelled`` or ``not_claimed`` (not due, already sent, or being sent by someone else)."""
    now = now or timezone.now()
    delivery = delivery_claim(delivery_id=delivery_id, now=now)
    if delivery is None:
        return "not_claimed"
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
    started = time.perf_counter()
    try:
        message = message_compose(delivery)
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
        notification_failed_send(delivery=delivery, error=str(exc), permanent=False)
        return "retrying"
    except PermanentError as exc:
        return _give_up(
            delivery, now=now, elapsed=_ms(started), error=str(exc), outcome=DeliveryAttempt.Outcome.PERMANENT
        )
    _finish(
        delivery,
        state=Delivery.State.SENT,
        outcome=DeliveryAttempt.Outcome.SENT,
        now=now,
        elapsed=_ms(started),
        sent_at=timezone.now(),
    )
    return "sent"


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
    notification_failed_send(delivery=delivery, error=error, permanent=True)
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
    """Record the attempt and move the delivery on, if this attempt still holds the claim."""
    fields: dict[str, object] = {"state": state, "lease_expires_at": None, "last_error": error}
    if next_attempt_at is not None:
        fields["next_attempt_at"] = next_attempt_at
    if sent_at is not None:
        fields["sent_at"] = sent_at
    with transaction.atomic():
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
