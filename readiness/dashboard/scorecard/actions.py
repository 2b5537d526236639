"""The scorecard page's actions: attest, mark not applicable (and undo), request a waiver, approve or
reject one, sign off a dimension (PRODUCT.md §3 "Act": "the pages offer the same actions through forms;
both call the same code").

Each view is thin: login, the project the reader may see (404 otherwise), a form that parses what was
typed, then the very service the API calls. The services hold every rule and raise ``PermissionDenied``
(403 here, as in the API), ``ValidationError`` (the form comes back with the message next to its field,
nothing changed) or ``ActionConflict`` (409, e.g. signing off what fails).

Two ways to answer, one markup: with htmx the response is the affected dimension's column, plus the
decision banner, the decision timeline and the status message swapped out of band, so the page changes
without a reload; without JavaScript a success redirects back to the page (POST/redirect/GET) with a
message, and a refusal renders the whole page with the refused form open (422, or 409 for a conflict).
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from readiness.dashboard.common.display import DIMENSION_LABELS
from readiness.dashboard.common.layouts import FULL_LAYOUT
from readiness.dashboard.common.projects import readable_project
from readiness.dashboard.scorecard.controls import Failure
from readiness.dashboard.scorecard.forms import (
    ActionForm,
    AttestForm,
    NotApplicableForm,
    SignOffForm,
    WaiverRequestForm,
    sentence,
)
from readiness.dashboard.scorecard.views import scorecard_context
from readiness.projects.models import Project
from readiness.scoring import services
from readiness.scoring.models import Criterion, Waiver

ACTION_LAYOUT = "dashboard/partial_scorecard_action.html"


def _criterion(project: Project, key: str) -> Criterion:
    # A criterion named in the URL: unknown is a 404, as in the API (criterion_for_caller).
    criterion = get_object_or_404(Criterion.objects.filter(project=project), key=key)
    criterion.project = project  # already loaded with its owners: the services check them
    return criterion


def _is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def _perform(
    request: HttpRequest,
    project: Project,
    *,
    action: str,
    target: str,
    dimension: str,
    anchor: str,
    form: ActionForm | None,
    service: Callable[[], str],
) -> HttpResponse:
    """Validate ``form``, run ``service`` (which returns what to tell the person), and answer."""
    failure: Failure | None = None
    status, notice = 200, ""
    if form is not None and not form.is_valid():
        errors = " ".join(message for messages_ in form.errors.values() for message in messages_)
        failure, status = Failure(action, target, form, errors), 422
    else:
        try:
            notice = service()
        except ValidationError as error:
            if form is not None:
                form.add_service_errors(error)
            failure, status = Failure(action, target, form, sentence(error.messages)), 422
        except services.ActionConflict as error:
            message = sentence([str(error)])
            if form is not None:
                form.add_error(None, message)
            failure, status = Failure(action, target, form, message), 409
    htmx = _is_htmx(request)
    if failure is None and not htmx:
        messages.success(request, notice)
        url = reverse("dashboard:scorecard", args=[project.slug])
        return HttpResponseRedirect(f"{url}#{anchor}")
    context = scorecard_context(
        request,
        project,
        layout=ACTION_LAYOUT if htmx else FULL_LAYOUT,
        failure=failure,
        notice=notice if failure is None else _refusal_notice(failure),
        notice_level="success" if failure is None else "error",
        affected=dimension,
        charts=not htmx,  # an htmx answer swaps the changed panels only, no chart
    )
    # htmx swaps only 2xx answers, and a browser logs every 4xx as a console error: to htmx a refusal
    # is a 200 whose column says what went wrong. A plain form post keeps the honest status.
    return TemplateResponse(request, "dashboard/scorecard.html", context, status=200 if htmx else status)


def _perform_on_criterion(
    request: HttpRequest,
    criterion: Criterion,
    *,
    action: str,
    form: ActionForm | None,
    service: Callable[[], str],
) -> HttpResponse:
    """``_perform`` for an action on one criterion: its form and the page's anchor are named by it."""
    return _perform(
        request,
        criterion.project,
        action=action,
        target=criterion.key,
        dimension=criterion.dimension,
        anchor=f"{criterion.dimension}-{criterion.key}",
        form=form,
        service=service,
    )


def _refusal_notice(failure: Failure) -> str:
    # Said in the status region too, so a screen reader hears that nothing happened; a refusal without
    # a form (a waiver decided meanwhile, gone from the page) is only said there.
    if failure.form is not None:
        return "Nothing was changed: see the message by the form."
    return f"Nothing was changed. {failure.message}"


@require_POST
@login_required
def attest(request: HttpRequest, slug: str, key: str) -> HttpResponse:
    project = readable_project(request, slug)
    criterion = _criterion(project, key)
    form = AttestForm(request.POST, id_prefix=f"attest-{key}")

    def service() -> str:
        services.attestation_create(
            criterion=criterion,
            by=request.user,
            evidence_url=form.cleaned_data["evidence_url"].strip(),
            note=form.cleaned_data["note"],
        )
        return f"Attested “{criterion.title}”."

    return _perform_on_criterion(request, criterion, action="attest", form=form, service=service)


@require_POST
@login_required
def not_applicable(request: HttpRequest, slug: str, key: str) -> HttpResponse:
    project = readable_project(request, slug)
    criterion = _criterion(project, key)
    form = NotApplicableForm(request.POST, id_prefix=f"not_applicable-{key}")

    def service() -> str:
        services.criterion_mark_not_applicable(
            criterion=criterion, by=request.user, reason=form.cleaned_data["reason"]
        )
        return f"“{criterion.title}” is marked not applicable."

    return _perform_on_criterion(request, criterion, action="not_applicable", form=form, service=service)


@require_POST
@login_required
def applicable(request: HttpRequest, slug: str, key: str) -> HttpResponse:
    project = readable_project(request, slug)
    criterion = _criterion(project, key)

    def service() -> str:
        services.criterion_clear_not_applicable(criterion=criterion, by=request.user)
        return f"“{criterion.title}” applies again."

    return _perform_on_criterion(request, criterion, action="applicable", form=None, service=service)


@require_POST
@login_required
def waiver_request(request: HttpRequest, slug: str, key: str) -> HttpResponse:
    project = readable_project(request, slug)
    criterion = _criterion(project, key)
    now = timezone.now()
    form = WaiverRequestForm(request.POST, id_prefix=f"waiver-{key}", today=timezone.localdate(now))

    def service() -> str:
        waiver = services.waiver_request(
            criterion=criterion,
            by=request.user,
            reason=form.cleaned_data["reason"],
            expires_at=form.expiry(now),
            now=now,
        )
        owner = project.owner(criterion.dimension)
        who = owner.get_username() if owner is not None else "an admin"
        return f"Waiver of “{criterion.title}” requested until {waiver.expires_at:%-d %b %Y}; {who} decides."

    return _perform_on_criterion(request, criterion, action="waiver", form=form, service=service)


def _waiver_decision(request: HttpRequest, slug: str, waiver_id: int, *, approve: bool) -> HttpResponse:
    project = readable_project(request, slug)
    waiver = (
        Waiver.objects.select_related("criterion").filter(pk=waiver_id, criterion__project=project).first()
    )
    if waiver is None:
        raise Http404
    waiver.criterion.project = project
    criterion = waiver.criterion

    def service() -> str:
        if approve:
            services.waiver_approve(waiver=waiver, by=request.user)
            return f"Waiver of “{criterion.title}” approved until {waiver.expires_at:%-d %b %Y}."
        services.waiver_reject(waiver=waiver, by=request.user)
        return f"Waiver of “{criterion.title}” rejected."

    return _perform(
        request,
        project,
        action="approve" if approve else "reject",
        target=str(waiver.pk),
        dimension=criterion.dimension,
        anchor=f"{criterion.dimension}-{criterion.key}",
        form=None,
        service=service,
    )


@require_POST
@login_required
def waiver_approve(request: HttpRequest, slug: str, waiver_id: int) -> HttpResponse:
    return _waiver_decision(request, slug, waiver_id, approve=True)


@require_POST
@login_required
def waiver_reject(request: HttpRequest, slug: str, waiver_id: int) -> HttpResponse:
    return _waiver_decision(request, slug, waiver_id, approve=False)


@require_POST
@login_required
def signoff(request: HttpRequest, slug: str, dimension: str) -> HttpResponse:
    project = readable_project(request, slug)
    if dimension not in DIMENSION_LABELS:
        raise Http404
    form = SignOffForm(request.POST, id_prefix=f"signoff-{dimension}")

    def service() -> str:
        services.signoff_create(
            project=project, dimension=dimension, by=request.user, note=form.cleaned_data["note"]
        )
        return f"{DIMENSION_LABELS[dimension]} signed off."

    return _perform(
        request,
        project,
        action="signoff",
        target=dimension,
        dimension=dimension,
        anchor=dimension,
        form=form,
        service=service,
    )
