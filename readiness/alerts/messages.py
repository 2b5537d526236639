"""What a delivery says: one message for all of its events, with the project, the old and new decision,
the blockers with their owners, and a link to the scorecard page."""

from __future__ import annotations

from email.utils import parseaddr
from typing import Any

from django.conf import settings
from django.core.mail.utils import DNS_NAME
from django.template.loader import render_to_string

from readiness.alerts.models import Delivery, Event
from readiness.alerts.rules import DECISION_CHANGED, decision_label
from readiness.alerts.transports import Message


def scorecard_link(slug: str) -> str:
    return f"{settings.READINESS_BASE_URL.rstrip('/')}/projects/{slug}/"


def blocker_line(blocker: dict[str, Any]) -> str:
    where = "/".join(part for part in (blocker.get("dimension"), blocker.get("criterion")) if part)
    owner = f" (owner: {blocker['owner']})" if blocker.get("owner") else ""
    return f"{where or 'project'}: {blocker.get('status')}: {blocker.get('reason', '')}{owner}"


def delivery_key(delivery: Delivery) -> str:
    """What names a delivery outside: the webhook's Idempotency-Key, the root of the email's Message-ID."""
    return f"readiness-delivery-{delivery.pk}"


def email_message_id(delivery: Delivery) -> str:
    """The email's Message-ID, the same on every attempt (RFC 5322 form, like ``make_msgid``):
    ``<readiness-delivery-42.20261122100000123456@example.com>``, the domain being
    DEFAULT_FROM_EMAIL's. The delivery's creation time makes it unique beyond this database: a staging
    and a production install mailing one list from one address both have a delivery 42, and a mail
    system that drops a Message-ID it has seen would otherwise drop the second one."""
    domain = parseaddr(settings.DEFAULT_FROM_EMAIL)[1].rpartition("@")[2] or str(DNS_NAME)
    return f"<{delivery_key(delivery)}.{delivery.created_at:%Y%m%d%H%M%S%f}@{domain}>"


def message_compose(delivery: Delivery) -> Message:
    """The message of a delivery, built from its recorded events and the scorecards they were found
    on (immutable), so a retry says what the first attempt said."""
    project = delivery.channel.project
    events: list[Event] = list(delivery.events.select_related("scorecard").order_by("occurred_at", "id"))
    scorecards = [event.scorecard for event in events if event.scorecard is not None]
    newest = max(scorecards, key=lambda card: (card.computed_at, card.pk), default=None)
    blockers: list[dict[str, Any]] = list(newest.payload.get("blockers", [])) if newest else []
    # The decision before the first event and after the last: a digest spans the whole day.
    old = (events[0].decision_before or None) if events else None
    new = (events[-1].decision_after or None) if events else None
    link = scorecard_link(project.slug)
    changed = any(event.kind == DECISION_CHANGED for event in events) and old != new
    if delivery.digest:
        count = f"{len(events)} event{'s' if len(events) != 1 else ''}"
        headline = f"Daily summary for {project.name}: {count}, decision {decision_label(new)}"
        if changed:
            headline += f" (was {decision_label(old)})"
    elif changed:
        headline = f"{project.name} is now {decision_label(new)} (was {decision_label(old)})"
    else:
        more = f" (and {len(events) - 1} more)" if len(events) > 1 else ""
        first = events[0].summary if events else "no events"
        headline = f"{project.name} ({decision_label(new)}): {first}{more}"

    context = {
        "project": project,
        "headline": headline,
        "old": decision_label(old),
        "new": decision_label(new),
        "events": events,
        "blockers": blockers,
        "blocker_lines": [blocker_line(blocker) for blocker in blockers],
        "link": link,
        "digest": delivery.digest,
    }
    slack = _slack_text(headline=headline, events=events, blockers=blockers, link=link)
    payload = {
        "text": slack,
        "project": {"slug": project.slug, "name": project.name, "stage": project.stage},
        "decision": {"old": old, "new": new},
        "events": [
            {
                "kind": event.kind,
                "summary": event.summary,
                "criterion": event.criterion or None,
                "dimension": event.dimension or None,
                "owner": event.owner or None,
                "occurred_at": event.occurred_at.isoformat(),
                "details": event.details,
            }
            for event in events
        ],
        "blockers": blockers,
        "link": link,
        "digest": delivery.digest,
        "delivery_id": delivery.pk,
    }
    return Message(
        subject=f"[Readiness] {headline}",
        text=render_to_string("alerts/notification.txt", context),
        html=render_to_string("alerts/notification.html", context),
        payload=payload,
        idempotency_key=delivery_key(delivery),
        message_id=email_message_id(delivery),
    )


def _slack(text: str) -> str:
    # Slack's mrkdwn treats these three as control characters; everything else passes as typed.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_text(*, headline: str, events: list[Event], blockers: list[dict[str, Any]], link: str) -> str:
    lines = [f"*{_slack(headline)}*"]
    lines += [f"• {_slack(event.summary)}" for event in events]
    if blockers:
        lines.append(f"Blockers ({len(blockers)}):")
        lines += [f"• {_slack(blocker_line(blocker))}" for blocker in blockers]
    lines.append(f"<{link}|Open the scorecard>")
    return "\n".join(lines)
