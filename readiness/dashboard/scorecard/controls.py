"""Which actions a reader of a scorecard sees, and the forms behind them.

What is shown mirrors what the services allow (``readiness.scoring.services``): the responsible person
of a dimension (or an admin) attests, marks criteria not applicable and signs off there; any member of
the project's team requests waivers; the responsible person (or an admin) decides a pending waiver,
never its requester. Leadership and other readers see no controls at all. The services still decide
every request: a control shown by mistake would be refused, never obeyed.

Two queries whatever the number of criteria: team membership, and the project's pending waivers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from django import forms

from readiness.dashboard.common.display import DIMENSION_LABELS
from readiness.dashboard.scorecard.forms import AttestForm, NotApplicableForm, SignOffForm, WaiverRequestForm
from readiness.dashboard.scorecard.scorecards import CriterionLine, DimensionColumn, ScorecardPage
from readiness.projects.models import Project
from readiness.scoring.models import Criterion, Kind, Waiver

CRITERION_ACTIONS = frozenset({"attest", "not_applicable", "applicable", "waiver"})


@dataclass(frozen=True)
class Failure:
    """An action that was refused: which one, on what, with the bound form that carries its errors."""

    action: str  # attest, not_applicable, applicable, waiver, approve, reject, signoff
    target: str  # the criterion key, the dimension, or the waiver id
    form: forms.Form | None = None
    message: str = ""  # a refusal that names no field (409: already decided, failing)


@dataclass(frozen=True)
class PendingWaiver:
    id: int
    reason: str
    requested_by: str
    requested_at: datetime
    expires_at: datetime
    may_decide: bool
    error: str = ""


@dataclass(frozen=True)
class CriterionControls:
    attest: AttestForm | None = None
    not_applicable: NotApplicableForm | None = None
    applicable: bool = False  # offer "applies again" (the criterion is marked not applicable)
    waiver: WaiverRequestForm | None = None
    pending: list[PendingWaiver] = field(default_factory=list)
    failure: Failure | None = None

    @property
    def any(self) -> bool:
        return bool(self.attest or self.not_applicable or self.applicable or self.waiver or self.message)

    @property
    def message(self) -> str:
        """A refusal no shown form carries: one without a form, or aimed at a form this reader does not
        get (attesting a metric criterion through a hand-made request)."""
        if self.failure is None:
            return ""
        shown = {"attest": self.attest, "not_applicable": self.not_applicable, "waiver": self.waiver}
        if self.failure.form is not None and shown.get(self.failure.action) is self.failure.form:
            return ""
        return self.failure.message

    @property
    def open(self) -> bool:
        return self.failure is not None


@dataclass(frozen=True)
class SignOffControl:
    form: SignOffForm | None  # None: the person may sign off, but not now (``blocked`` says why)
    blocked: str = ""
    failure: Failure | None = None


@dataclass(frozen=True)
class CriterionRow:
    line: CriterionLine
    controls: CriterionControls


@dataclass(frozen=True)
class DimensionPanel:
    """One column of the page with the reader's controls."""

    column: DimensionColumn
    signoff: SignOffControl | None  # None: this reader may not sign off this dimension
    criteria: list[CriterionRow]
    ml_tests: list[CriterionRow]

    @property
    def key(self) -> str:
        return self.column.key


def dimension_panels(
    *,
    page: ScorecardPage,
    project: Project,
    criteria: list[Criterion],
    user: Any,
    now: datetime,
    today: date,
    failure: Failure | None = None,
    member: bool | None = None,
) -> list[DimensionPanel]:
    """``member``: whether the reader is an admin or on the project's team, if the caller knows."""
    if member is None:
        member = bool(user.is_staff) or project.is_member(user)
    kinds = {criterion.key: criterion.kind for criterion in criteria}
    not_applicable = {c.key for c in criteria if c.not_applicable_reason is not None}
    pending = _pending_waivers(project=project, user=user, now=now, failure=failure)

    def row(line: CriterionLine) -> CriterionRow:
        mine = (
            failure
            if failure is not None and failure.action in CRITERION_ACTIONS and failure.target == line.key
            else None
        )
        responsible = project.may_act_in(user, line.dimension)
        return CriterionRow(
            line=line,
            controls=CriterionControls(
                attest=_form(AttestForm, "attest", line, mine)
                if responsible and kinds.get(line.key) == Kind.ATTESTATION and line.key not in not_applicable
                else None,
                not_applicable=_form(NotApplicableForm, "not_applicable", line, mine)
                if responsible and line.key not in not_applicable
                else None,
                applicable=responsible and line.key in not_applicable,
                waiver=_form(WaiverRequestForm, "waiver", line, mine, today=today)
                if member and line.status not in ("waived", "not_applicable")
                else None,
                pending=pending.get(line.key, []),
                failure=mine,
            ),
        )

    panels = []
    for column in page.columns:
        panels.append(
            DimensionPanel(
                column=column,
                signoff=_signoff_control(column, project=project, user=user, failure=failure),
                criteria=[row(line) for line in column.criteria],
                ml_tests=[row(line) for line in column.ml_tests],
            )
        )
    return panels


def _form(
    form_class: type[forms.Form], action: str, line: CriterionLine, failure: Failure | None, **kwargs: Any
) -> Any:
    # The refused form comes back bound, with its errors; every other form starts empty.
    if failure is not None and failure.action == action and failure.form is not None:
        return failure.form
    return form_class(id_prefix=f"{action}-{line.key}", **kwargs)


def _signoff_control(
    column: DimensionColumn, *, project: Project, user: Any, failure: Failure | None
) -> SignOffControl | None:
    if not project.may_act_in(user, column.key):
        return None
    mine = (
        failure
        if failure is not None and failure.action == "signoff" and failure.target == column.key
        else None
    )
    label = DIMENSION_LABELS[column.key]
    if column.status == "fail":
        return SignOffControl(
            form=None, blocked=f"{label} can be signed off once none of its blockers fails.", failure=mine
        )
    if column.signoff_state == "valid":
        return SignOffControl(form=None, failure=mine)  # the column's sign-off line already says so
    form = (
        mine.form
        if mine is not None and mine.form is not None
        else SignOffForm(id_prefix=f"signoff-{column.key}")
    )
    return SignOffControl(form=form, failure=mine)


def _pending_waivers(
    *, project: Project, user: Any, now: datetime, failure: Failure | None
) -> dict[str, list[PendingWaiver]]:
    """Pending waivers by criterion key; one past its expiry is no longer worth deciding."""
    waivers = (
        Waiver.objects.filter(criterion__project=project, status=Waiver.Status.PENDING, expires_at__gt=now)
        .order_by("requested_at", "id")
        .values_list(
            "id",
            "criterion__key",
            "criterion__dimension",
            "reason",
            "requested_by_id",
            "requested_by__username",
            "requested_at",
            "expires_at",
        )
    )
    found: dict[str, list[PendingWaiver]] = {}
    for pk, key, dimension, reason, requester_id, requester, requested_at, expires_at in waivers:
        refused = (
            failure is not None and failure.action in ("approve", "reject") and failure.target == str(pk)
        )
        found.setdefault(key, []).append(
            PendingWaiver(
                id=pk,
                reason=reason,
                requested_by=requester,
                requested_at=requested_at,
                expires_at=expires_at,
                may_decide=project.may_act_in(user, dimension) and requester_id != user.pk,
                error=failure.message if refused and failure is not None else "",
            )
        )
    return found
