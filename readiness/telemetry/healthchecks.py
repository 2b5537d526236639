"""Health-check cycles: claim the due targets, probe them, store the points like a push.

beat (every 10 s) -> claim due targets (conditional UPDATE each) -> probe_all (asyncio, bounded)
    -> one bulk update of last_probe_at/last_up/last_reason
    -> per target: one batch of health.up / health.latency_ms points (batches_store, one INSERT), from
       "probe:<target name>" (the provenance that lets a criterion accept only probed availability)
    -> per project whose up/down changed: a coalesced re-evaluation
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime

import orjson
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from readiness.observability.metrics import record_probe_outcomes
from readiness.projects.vocabulary import Stage
from readiness.security.egress import deny_networks
from readiness.telemetry.claiming import claim_due
from readiness.telemetry.models import HealthCheck
from readiness.telemetry.probes import ProbeResult, ProbeTarget, probe_all
from readiness.telemetry.provenance import source_label
from readiness.telemetry.services import batches_store
from readiness.telemetry.signals import project_evidence_changed

log = logging.getLogger(__name__)

# A cycle claims at most this many rounds of READINESS_PROBE_CONCURRENCY targets (1,000 by default):
# with timeouts capped at 30 s, the worst cycle (every target timing out) lasts 10 x 30 s = 300 s,
# inside the task's time limit; targets beyond stay due and the next tick takes them.
CLAIM_ROUNDS = 10
# A probe never waits longer than this, whatever its target says: a health endpoint silent for 30 s is
# down for any caller, and 30 s is the shortest interval, so a target's probe ends before its next.
MAX_PROBE_TIMEOUT = 30.0
REASON_MAX = HealthCheck._meta.get_field("last_reason").max_length or 300
# What a cycle reads of a target: the probe's inputs, the claim's and the up/down comparison's.
CLAIM_FIELDS = (
    "id",
    "project_id",
    "name",
    "url",
    "method",
    "expected_status",
    "expected_body_contains",
    "timeout",
    "interval",
    "next_probe_at",
    "last_up",
)


@dataclass(frozen=True)
class CycleReport:
    probed: int
    up: int
    down: int
    changed: int  # targets whose up/down differs from their previous probe
    seconds: float  # the probing itself, without the database work


def healthchecks_claim_due(*, now: datetime, limit: int) -> list[HealthCheck]:
    """Claim up to ``limit`` due targets for this cycle, oldest due first.

    Each claim is ``UPDATE ... SET next_probe_at = <next> WHERE id = X AND next_probe_at = <old>``
    that must change exactly one row: of two overlapping cycles only one moves a target, and the other
    sees zero rows and skips it, so no target is probed twice. The claim moves the due time to the next
    interval before probing, so a cycle that crashes after claiming never stalls a target: it is
    simply due again one interval later.
    """
    due = (
        HealthCheck.objects.filter(enabled=True, next_probe_at__lte=now)
        .exclude(project__stage=Stage.RETIRED)
        .order_by("next_probe_at", "id")
        .only(*CLAIM_FIELDS)[:limit]
    )
    return claim_due(due, due_field="next_probe_at", now=now)


def probe_target(check: HealthCheck) -> ProbeTarget:
    return ProbeTarget(
        name=check.name,
        url=check.url,
        method=check.method,
        expected_status=check.expected_status,
        expected_body_contains=check.expected_body_contains,
        timeout=min(check.timeout, MAX_PROBE_TIMEOUT),
    )


def healthchecks_run(*, now: datetime | None = None) -> CycleReport:
    """One probe cycle: claim, probe concurrently, record each target's state and its points."""
    now = now or timezone.now()
    concurrency = settings.READINESS_PROBE_CONCURRENCY
    checks = healthchecks_claim_due(now=now, limit=concurrency * CLAIM_ROUNDS)
    if not checks:
        return CycleReport(probed=0, up=0, down=0, changed=0, seconds=0.0)
    started = time.perf_counter()
    results = asyncio.run(
        probe_all(
            [probe_target(check) for check in checks],
            concurrency=concurrency,
            deny=deny_networks(),
        )
    )
    seconds = time.perf_counter() - started
    changed = healthchecks_record(checks=checks, results=results, now=now)
    up = sum(result.up for result in results)
    record_probe_outcomes(up=up, down=len(checks) - up)
    log.info("probed %d targets in %.2f s: %d up, %d down", len(checks), seconds, up, len(checks) - up)
    return CycleReport(
        probed=len(checks), up=up, down=len(checks) - up, changed=changed, seconds=round(seconds, 3)
    )


def healthchecks_record(*, checks: list[HealthCheck], results: list[ProbeResult], now: datetime) -> int:
    """Store a cycle's results: each target's last state, and its points through the push path.
    Returns how many targets changed between up and down."""
    points: list[tuple[HealthCheck, list[dict[str, object]]]] = []
    flipped: set[int] = set()
    changed = 0
    ts = now.isoformat()
    for check, result in zip(checks, results, strict=True):
        if check.last_up != result.up:
            changed += 1
            flipped.add(check.project_id)
        check.last_probe_at = now
        check.last_up = result.up
        check.last_reason = result.reason[:REASON_MAX]
        labels = {"target": check.name}
        check_points: list[dict[str, object]] = [
            {"metric": "health.up", "value": 1.0 if result.up else 0.0, "ts": ts, "labels": labels}
        ]
        # Only an answer has a latency: a refused or timed-out probe would otherwise put its timeout
        # (or 0) into the latency percentiles. Its downtime is in health.up.
        if result.latency_ms is not None:
            check_points.append(
                {"metric": "health.latency_ms", "value": result.latency_ms, "ts": ts, "labels": labels}
            )
        points.append((check, check_points))
    # One transaction: the target's shown state and its points land together or not at all.
    with transaction.atomic():
        HealthCheck.objects.bulk_update(checks, ["last_probe_at", "last_up", "last_reason"], batch_size=500)
        # The same storage path as a push: validated, stored durably, applied by the drain, so
        # availability is mean(health.up) like any pushed metric. One batch per target, since a batch
        # has one source: "probe:<name>", which may write the reserved health.* names; all of a
        # cycle's batches in one INSERT (one at a time took 3 s for 1,000 targets).
        batches_store(
            batches=[
                (check.project_id, source_label("probe", check.name), orjson.dumps({"points": check_points}))
                for check, check_points in points
            ],
            now=now,
        )
        # A flip must be judged promptly (a target going down can turn the decision no_go). Applying
        # the batch asks for an evaluation too, and requests coalesce, so this adds none when the
        # drain keeps up; the evaluation runs a second later, after the drain applied the points.
        for project_id in flipped:
            project_evidence_changed.send(sender=HealthCheck, project_id=project_id)
    return changed
