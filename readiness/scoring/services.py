"""Workflows of scoring: evaluate and store scorecards, and the actions people and pipelines take on
criteria (attest, waive, mark not applicable, sign off). Each action is audit-logged and re-evaluates
the project at once (PRODUCT.md §3 "Act")."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import URLValidator
from django.db import IntegrityError, transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from readiness.audit.services import audit_record, audit_snapshot
from readiness.observability.metrics import evaluation_timer
from readiness.projects.models import OWNER_FIELDS, Project, ProjectToken
from readiness.scoring import engine
from readiness.scoring.drift.jobs import drift_results_ensure
from readiness.scoring.inputs import evaluation_input
from readiness.scoring.models import (
    MAX_WAIVER_DAYS,
    Attestation,
    Criterion,
    Kind,
    Scorecard,
    SignOff,
    Waiver,
)
from readiness.scoring.signals import scorecard_stored

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

# Even when nothing changes, one scorecard a day per active project keeps the trend lines continuous.
DAILY_SNAPSHOT = timedelta(days=1)


class ActionConflict(Exception):
    """The action contradicts the current state (HTTP 409), e.g. signing off a failing dimension."""


def project_for_evaluation(project_id: int, *, lock: bool = False) -> Project:
    """The project with what an evaluation reads of it (its team and owners). ``lock``: its row locked
    in the same query, as ``Project.objects.lock`` locks it (the project's row only, not its team's).

    The owners in a second query, by id: joined to the project, four outer joins of the users table
    took PostgreSQL longer to plan and Django longer to compile (~2 ms an evaluation) than both
    queries together."""
    projects = Project.objects.select_related("team")
    if lock:
        projects = projects.select_for_update(of=("self",))
    project = projects.get(pk=project_id)
    owner_ids = {field: getattr(project, f"{field}_id") for field in OWNER_FIELDS.values()}
    owners = get_user_model().objects.in_bulk({pk for pk in owner_ids.values() if pk is not None})
    for field, pk in owner_ids.items():
        if pk in owners:
            # Assigning the same user the id names: the relation's cache, as select_related fills it.
            setattr(project, field, owners[pk])
    return project


def scorecard_compute(
    *, project: Project, target: str | None = None, now: datetime | None = None
) -> engine.Scorecard:
    """Evaluate the project now without storing a scorecard (``?target=`` on the fly).

    Its drift criteria get a stored result first where none is usable yet (the job has not reached a
    new or edited criterion): the evaluation's inputs only read, and the next evaluation and the drift
    chart read that same row."""
    if target is not None and target not in ("pilot", "production"):
        raise ValidationError({"target": f"unknown target {target!r}; expected pilot or production"})
    now = now or timezone.now()
    drift_results_ensure(project=project, now=now)
    return engine.evaluate(evaluation_input(project=project, target=target, now=now))


def scorecard_refresh(
    *, project: Project, now: datetime | None = None, unless_current: bool = False
) -> Scorecard:
    """Evaluate the project for its default target and store a scorecard when the digest changed
    (or the newest one is a day old). Returns the newest stored scorecard.

    ``unless_current`` (the gate): when, once the lock is ours, the latest scorecard turns out to be
    current (``scorecard_is_current``), it is returned without evaluating: the evaluation we waited
    for on the lock was the one we needed."""
    now = now or timezone.now()
    with transaction.atomic():
        # Lock the project row: two workers evaluating one project at once would both see the old
        # digest and store two identical scorecards, or record one decision change twice.
        project = project_for_evaluation(project.pk, lock=True)
        evaluated_at = project.evaluated_at
        latest = Scorecard.objects.latest_for(project).first()
        if (
            unless_current
            and latest is not None
            and scorecard_is_current(project=project, latest=latest, evaluated_at=evaluated_at, now=now)
        ):
            return latest
        with evaluation_timer():
            return _evaluate_and_store(project=project, latest=latest, evaluated_at=evaluated_at, now=now)


def _evaluate_and_store(
    *, project: Project, latest: Scorecard | None, evaluated_at: datetime | None, now: datetime
) -> Scorecard:
    # The caller holds the project's row lock (scorecard_refresh).
    result = scorecard_compute(project=project, now=now)
    # Confirmed as of now, whether or not a scorecard is stored (never moved back by an evaluation
    # "as of" an earlier moment, such as the demo's history).
    if evaluated_at is None or evaluated_at < now:
        Project.objects.filter(pk=project.pk).update(evaluated_at=now)
    if latest is not None and latest.digest == result.digest and now - latest.computed_at < DAILY_SNAPSHOT:
        return latest
    scorecard = Scorecard.objects.create(
        project=project,
        target=result.target,
        decision=result.decision,
        computed_at=now,
        digest=result.digest,
        payload=result.to_json(),
        previous_decision=latest.decision if latest is not None else "",
    )
    # Its notification events (decision change, regressions, data gone missing) in the same
    # transaction: they exist exactly when the scorecard does, and the lock records them once.
    scorecard_stored.send(sender=Scorecard, project=project, scorecard=scorecard, previous=latest)
    return scorecard


def latest_scorecard(*, project: Project) -> Scorecard:
    """The newest stored scorecard, evaluating the project first if it has none yet."""
    latest = Scorecard.objects.latest_for(project).first()
    return latest if latest is not None else scorecard_refresh(project=project)


# --- The deploy gate ------------------------------------------------------------------------------

# How long an evaluation vouches for the latest scorecard at the gate. Evidence that moves continuously
# (metric windows sliding, data ageing out) is at most this old there; below it, a busy pipeline
# polling the gate (every build of every branch) reads one row instead of evaluating each time: at
# most one evaluation a minute per project, whatever the polling rate.
GATE_FRESHNESS = timedelta(seconds=60)


def scorecard_for_gate(*, project: Project, now: datetime | None = None) -> Scorecard:
    """The scorecard the deploy gate judges (``GET /gate``, ``readiness_gate``; PRODUCT.md §3): the
    latest one while it is current, else a fresh evaluation, stored like any other (a new scorecard
    when the digest changed, with its decision-change event) under the same project row lock as the
    evaluation task, so a gate and a worker evaluating at once never store two scorecards."""
    now = now or timezone.now()
    latest = Scorecard.objects.latest_for(project).first()
    if latest is not None and scorecard_is_current(
        project=project, latest=latest, evaluated_at=project.evaluated_at, now=now
    ):
        return latest
    return scorecard_refresh(project=project, now=now, unless_current=True)


def scorecard_is_current(
    *, project: Project, latest: Scorecard, evaluated_at: datetime | None, now: datetime
) -> bool:
    """Whether the gate may answer from ``latest``: it is for the project's default target, an
    evaluation confirmed it less than ``GATE_FRESHNESS`` ago, and no waiver or attestation of the
    project expired since. Expiries are instants known in advance, so they are checked exactly rather
    than within the minute: a waiver that ended a second ago already counts as ended."""
    if latest.target != engine.default_target(project.stage):  # the stage moved since
        return False
    confirmed = max(latest.computed_at, evaluated_at or latest.computed_at)
    if now - confirmed >= GATE_FRESHNESS:
        return False
    return not _expired_between(project=project, start=confirmed, end=now)


def _expired_between(*, project: Project, start: datetime, end: datetime) -> bool:
    """Whether an approved waiver or an attestation of the project expired in ``(start, end]``: the
    instants at which the engine stops counting them (valid while ``now < expiry``)."""
    if start >= end:
        return False
    waivers = Waiver.objects.filter(
        criterion__project=project,
        status=Waiver.Status.APPROVED,
        expires_at__gt=start,
        expires_at__lte=end,
    )
    if waivers.exists():
        return True
    # The newest attestation of each criterion with a re-attestation cadence is the one that counts;
    # a project has tens of such criteria at most, so their expiry is computed here rather than with
    # date arithmetic that differs between PostgreSQL and SQLite.
    newest = Attestation.objects.filter(criterion=OuterRef("pk"), attested_at__lte=end).order_by(
        "-attested_at", "-id"
    )
    cadences = (
        Criterion.objects.filter(project=project, valid_for_days__isnull=False)
        .annotate(attested_at=Subquery(newest.values("attested_at")[:1]))
        .filter(attested_at__isnull=False)
        .values_list("attested_at", "valid_for_days")
    )
    return any(start < attested_at + timedelta(days=days) <= end for attested_at, days in cadences)


# --- Actions --------------------------------------------------------------------------------------


def _require_responsible(
    *, criterion_or_dimension: Criterion | str, project: Project, by: AbstractBaseUser
) -> None:
    dimension = (
        criterion_or_dimension
        if isinstance(criterion_or_dimension, str)
        else criterion_or_dimension.dimension
    )
    if not project.may_act_in(by, dimension):
        raise PermissionDenied(f"only the {dimension} responsible person or an admin may do this")


def criterion_save(
    *,
    criterion: Criterion,
    actor: AbstractBaseUser | None,
    created: bool,
    before: dict[str, Any] | None,
    actor_label: str | None = None,
) -> None:
    """Record a criterion edit (made by the admin console or an import) and re-evaluate."""
    audit_record(
        action="criterion.create" if created else "criterion.update",
        instance=criterion,
        actor=actor,
        actor_label=actor_label,
        project=criterion.project,
        before=before,
        after=audit_snapshot(criterion),
    )
    scorecard_refresh(project=criterion.project)


def criterion_delete(*, criterion: Criterion, actor: AbstractBaseUser | None) -> None:
    # Deleting a criterion is a criterion change too (PRODUCT.md §2): audited, then re-evaluated.
    project = criterion.project
    with transaction.atomic():
        audit_record(
            action="criterion.delete",
            instance=criterion,
            actor=actor,
            project=project,
            before=audit_snapshot(criterion),
        )
        criterion.delete()
    scorecard_refresh(project=project)


def attestation_create(
    *,
    criterion: Criterion,
    by: AbstractBaseUser | None = None,
    token: ProjectToken | None = None,
    evidence_url: str = "",
    note: str = "",
) -> Attestation:
    """A person (the responsible one) or a pipeline (a token with ``attest``) states a criterion holds.
    Through a token the attestation is ``automated``: it counts 1 point in the ML Test Score."""
    project = criterion.project
    if token is not None:
        if token.project_id != project.pk or not token.has_scope("attest") or token.is_revoked:
            raise PermissionDenied("this token may not attest criteria of this project")
    elif by is not None:
        _require_responsible(criterion_or_dimension=criterion, project=project, by=by)
    else:
        raise PermissionDenied("an attestation needs a person or a token")
    if criterion.kind != Kind.ATTESTATION:
        raise ValidationError(
            {"criterion": f"{criterion.key} is a {criterion.kind} criterion, not an attestation"}
        )
    if evidence_url:
        try:
            URLValidator(schemes=["http", "https"])(evidence_url)
        except ValidationError:
            raise ValidationError({"evidence_url": "must be an http(s) URL"}) from None
    elif criterion.evidence_required:
        raise ValidationError({"evidence_url": f"{criterion.key} requires an evidence link"})
    with transaction.atomic():
        attestation = Attestation.objects.create(
            criterion=criterion,
            attested_by=by if token is None else None,
            token=token,
            automated=token is not None,
            evidence_url=evidence_url,
            note=note,
        )
        audit_record(
            action="attestation.create",
            instance=attestation,
            actor=by,
            actor_label=f"token:{token.name}" if token is not None else None,
            project=project,
            after=audit_snapshot(attestation),
        )
    scorecard_refresh(project=project)
    return attestation


def waiver_request(
    *,
    criterion: Criterion,
    by: AbstractBaseUser,
    reason: str,
    expires_at: datetime,
    now: datetime | None = None,
) -> Waiver:
    project = criterion.project
    if not (by.is_staff or project.is_member(by)):
        raise PermissionDenied("only members of the project's team may request waivers")
    now = now or timezone.now()
    errors: dict[str, str] = {}
    if not reason.strip():
        errors["reason"] = "a reason is required"
    if expires_at <= now:
        errors["expires_at"] = "must be in the future"
    elif expires_at > Waiver.latest_allowed_expiry(now):
        errors["expires_at"] = f"a waiver lasts at most {MAX_WAIVER_DAYS} days"
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        waiver = Waiver.objects.create(
            criterion=criterion,
            reason=reason.strip(),
            requested_by=by,
            requested_at=now,
            expires_at=expires_at,
        )
        audit_record(
            action="waiver.request",
            instance=waiver,
            actor=by,
            project=project,
            after=audit_snapshot(waiver),
        )
    return waiver


def _waiver_decide(*, waiver: Waiver, by: AbstractBaseUser, status: str) -> Waiver:
    criterion = waiver.criterion
    if waiver.requested_by_id == by.pk:
        raise PermissionDenied("nobody approves or rejects their own waiver")
    _require_responsible(criterion_or_dimension=criterion, project=criterion.project, by=by)
    now = timezone.now()
    if status == Waiver.Status.APPROVED and waiver.expires_at <= now:
        raise ValidationError({"expires_at": "this waiver has already expired"})
    with transaction.atomic():
        before = audit_snapshot(waiver)
        # Conditional update: two reviewers clicking at once decide the waiver exactly once.
        changed = Waiver.objects.filter(pk=waiver.pk, status=Waiver.Status.PENDING).update(
            status=status, approved_by=by, decided_at=now
        )
        if not changed:
            raise ActionConflict(f"this waiver is already {Waiver.objects.get(pk=waiver.pk).status}")
        waiver.refresh_from_db()
        audit_record(
            action=f"waiver.{'approve' if status == Waiver.Status.APPROVED else 'reject'}",
            instance=waiver,
            actor=by,
            project=criterion.project,
            before=before,
            after=audit_snapshot(waiver),
        )
    scorecard_refresh(project=criterion.project)
    return waiver


def waiver_approve(*, waiver: Waiver, by: AbstractBaseUser) -> Waiver:
    return _waiver_decide(waiver=waiver, by=by, status=Waiver.Status.APPROVED)


def waiver_reject(*, waiver: Waiver, by: AbstractBaseUser) -> Waiver:
    return _waiver_decide(waiver=waiver, by=by, status=Waiver.Status.REJECTED)


def criterion_mark_not_applicable(*, criterion: Criterion, by: AbstractBaseUser, reason: str) -> Criterion:
    _require_responsible(criterion_or_dimension=criterion, project=criterion.project, by=by)
    if not reason.strip():
        raise ValidationError({"reason": "a reason is required"})
    return _criterion_set_not_applicable(criterion=criterion, by=by, reason=reason.strip())


def criterion_clear_not_applicable(*, criterion: Criterion, by: AbstractBaseUser) -> Criterion:
    _require_responsible(criterion_or_dimension=criterion, project=criterion.project, by=by)
    return _criterion_set_not_applicable(criterion=criterion, by=by, reason=None)


def _criterion_set_not_applicable(
    *, criterion: Criterion, by: AbstractBaseUser, reason: str | None
) -> Criterion:
    before = {"not_applicable_reason": criterion.not_applicable_reason}
    with transaction.atomic():
        criterion.not_applicable_reason = reason
        criterion.updated_at = timezone.now()
        criterion.save(update_fields=["not_applicable_reason", "updated_at"])
        audit_record(
            action="criterion.not_applicable" if reason else "criterion.applicable",
            instance=criterion,
            actor=by,
            project=criterion.project,
            before=before,
            after={"not_applicable_reason": reason},
        )
    scorecard_refresh(project=criterion.project)
    return criterion


def signoff_create(*, project: Project, dimension: str, by: AbstractBaseUser, note: str = "") -> SignOff:
    """The responsible person declares a dimension done, bound to its current results."""
    if dimension not in OWNER_FIELDS:
        raise ValidationError({"dimension": f"unknown dimension {dimension!r}"})
    _require_responsible(criterion_or_dimension=dimension, project=project, by=by)
    current = scorecard_refresh(project=project)
    result = scorecard_compute(project=project)
    dim = result.dimensions[dimension]
    if dim.status == "fail":
        raise ActionConflict(f"{dimension} is failing; nobody signs off what is failing")
    if dim.signoff.state == "valid":
        raise ActionConflict(f"{dimension} is already signed off on these results")
    try:
        with transaction.atomic():
            signoff = SignOff.objects.create(
                project=project,
                dimension=dimension,
                signed_by=by,
                note=note,
                digest=dim.digest,
                scorecard=current,
            )
            audit_record(
                action="signoff.create",
                instance=signoff,
                actor=by,
                project=project,
                after=audit_snapshot(signoff),
            )
    except IntegrityError:
        raise ActionConflict(f"{dimension} is already signed off on these results") from None
    scorecard_refresh(project=project)
    return signoff
