"""Thin Celery tasks of notifications: take ids, call a service."""

from __future__ import annotations

from celery import shared_task

from readiness.alerts import sending, services


# 45 s soft / 60 s hard: above the slowest honest send (SMTP's 20 s timeout, or the webhook's 10 s,
# plus composing the message), and below the 2-minute claim lease, so a sender is always stopped
# before anyone may presume it dead and claim its delivery again.
@shared_task(name="alerts.delivery_send", soft_time_limit=45, time_limit=60)
def delivery_send(delivery_id: int) -> str:
    return sending.delivery_send(delivery_id=delivery_id)


# A sweep is two indexed queries and at most SWEEP_MAX publishes: seconds. The limit stays below the
# 60 s interval so two sweeps never overlap.
@shared_task(name="alerts.sweep_deliveries", soft_time_limit=40, time_limit=50)
def sweep_deliveries() -> int:
    return services.deliveries_sweep()


# One query per kind of expiry plus one short transaction per project with news: well under a minute
# for thousands of projects; ten minutes is the bound of a pathological day, far inside the hour.
@shared_task(name="alerts.scan_expiring", soft_time_limit=540, time_limit=600)
def scan_expiring() -> int:
    return services.expiring_scan()


# One conditional UPDATE and one publish per open digest: the sending is done by delivery_send.
@shared_task(name="alerts.send_digests", soft_time_limit=240, time_limit=300)
def send_digests() -> int:
    return services.digests_open()
