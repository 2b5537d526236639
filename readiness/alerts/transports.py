"""How a message leaves Readiness: small transport classes behind one interface (STYLE.md).

A transport either returns (the message was accepted) or raises one of two errors, and the caller
decides what happens next from the kind alone:
- ``TransientError``: may work later (timeouts, refused connections, HTTP 5xx and 429, SMTP 4xx):
  retried with exponential backoff;
- ``PermanentError``: will not work until someone changes the channel (HTTP 4xx other than 429, a
  redirect, SMTP 5xx such as an unknown recipient): the channel is disabled with the error shown.
- ``UncertainError`` (email only): the mail server got the whole message and its answer never came,
  so it may have accepted it: not retried (see readiness/alerts/smtp.py).
"""

from __future__ import annotations

import smtplib
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import orjson
from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection

from readiness.alerts.models import Channel
from readiness.security.egress import (
    DeniedDestination,
    InvalidDestination,
    UnresolvedDestination,
    deny_networks,
    destination,
    http_client,
)

# A receiver that has not answered in 10 s is down for our purpose; the send task's time limit
# (see tasks.py) leaves room for this plus the message composition.
WEBHOOK_TIMEOUT = 10.0
# SMTP servers greylist and do DNS checks before answering: give them twice the webhook's time.
SMTP_TIMEOUT = 20.0
ERROR_MAX = 500  # what is kept of a receiver's answer in an error message
# What is kept of a failed webhook's reply (issue 10): enough to see what the receiver said; read as
# at most this many bytes, the most 200 characters of UTF-8 take.
WEBHOOK_REPLY_MAX = 200
WEBHOOK_REPLY_BYTES = 4 * WEBHOOK_REPLY_MAX


class DeliveryError(Exception):
    """A message could not be delivered; ``str()`` says why, for people."""


class TransientError(DeliveryError):
    """Try again later."""


class PermanentError(DeliveryError):
    """Trying again will not help; the channel needs attention."""


class UncertainError(DeliveryError):
    """The message may have been delivered: trying again may deliver it twice."""


@dataclass(frozen=True)
class Message:
    """One notification, in every form a transport may need."""

    subject: str
    text: str  # plain text (email body; Slack-compatible text for webhooks)
    html: str  # the email's HTML alternative
    payload: dict[str, Any]  # the webhook's JSON body (includes ``text``)
    idempotency_key: str  # the same for every attempt of one delivery: receivers may dedupe on it
    message_id: str  # the email's Message-ID header, the same for every attempt of one delivery


class Transport(Protocol):
    def send(self, message: Message) -> None: ...


class WebhookTransport:
    """POST the JSON payload; a 2xx answer is delivered.

    A webhook URL is typed by people (admin console, YAML in a team's repository), so the POST obeys
    the egress rules against server-side request forgery (readiness/security/egress.py): its host is
    resolved and checked once, and the POST connects to that checked address, through no proxy,
    following no redirect (a webhook that moved must be updated by a person).
    """

    def __init__(self, url: str, *, timeout: float = WEBHOOK_TIMEOUT) -> None:
        self.url = url
        self.timeout = timeout

    def send(self, message: Message) -> None:
        try:
            checked = destination(self.url, deny=deny_networks())
        except InvalidDestination as exc:
            raise PermanentError(f"webhook URL {self.url!r} is not usable: {exc}") from None
        except DeniedDestination as exc:
            raise PermanentError(f"webhook URL {self.url!r} refused: {exc}") from None
        except UnresolvedDestination as exc:
            raise TransientError(f"could not reach {self.url}: {exc}") from None
        try:
            with http_client(timeout=self.timeout) as client:
                request = checked.request(
                    client,
                    "POST",
                    content=orjson.dumps(message.payload),
                    headers={
                        "Content-Type": "application/json",
                        "User-Agent": "Readiness notifications",
                        # The same key on every attempt: a receiver that saw it already can drop the
                        # repeat (the window between its 2xx and our recording "sent" is the one we
                        # cannot close).
                        "Idempotency-Key": message.idempotency_key,
                    },
                )
                response = client.send(request, stream=True)
                try:
                    status = response.status_code
                    if 200 <= status < 300:
                        return
                    reply = _reply_excerpt(response)
                finally:
                    response.close()
        except httpx.TimeoutException:
            raise TransientError(f"no answer from {self.url} within {self.timeout:g} s") from None
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise PermanentError(f"webhook URL {self.url!r} is not usable: {exc}") from None
        except httpx.TransportError as exc:
            raise TransientError(f"could not reach {self.url}: {exc or type(exc).__name__}") from None
        answer = f"{self.url} answered HTTP {status}: {reply}".rstrip(": ")
        if status == 429 or status >= 500:
            raise TransientError(answer)
        raise PermanentError(answer)


def _reply_excerpt(response: httpx.Response) -> str:
    """At most WEBHOOK_REPLY_MAX characters of a failed webhook's reply, on one line: its error becomes
    the channel's last error, shown in the admin console, and a receiver may answer a whole HTML page
    (or, hostile, gigabytes: only the bytes those characters can take are read)."""
    read = b""
    for chunk in response.iter_bytes():
        read += chunk
        if len(read) >= WEBHOOK_REPLY_BYTES:
            break
    text = " ".join(read[:WEBHOOK_REPLY_BYTES].decode("utf-8", errors="replace").split())
    return text if len(text) <= WEBHOOK_REPLY_MAX else text[: WEBHOOK_REPLY_MAX - 1] + "…"


class EmailTransport:
    """Send through Django's mail backend: plain text with an HTML alternative."""

    def __init__(self, recipients: list[str], *, timeout: float = SMTP_TIMEOUT) -> None:
        self.recipients = recipients
        self.timeout = timeout

    def send(self, message: Message) -> None:
        if not self.recipients:
            raise PermanentError("the email channel has no recipients")
        connection = get_connection(timeout=self.timeout)
        email = EmailMultiAlternatives(
            subject=message.subject,
            body=message.text,
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=self.recipients,
            # A Message-ID of our own (Django would make a new one on every attempt): a repeat shows
            # as one message to whatever threads or drops by it.
            headers={"X-Readiness-Delivery": message.idempotency_key, "Message-ID": message.message_id},
            connection=connection,
        )
        email.attach_alternative(message.html, "text/html")
        try:
            email.send(fail_silently=False)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = {code for code, _ in exc.recipients.values()}
            refused = "; ".join(
                f"{to}: {code} {_text(answer)}" for to, (code, answer) in exc.recipients.items()
            )
            if all(code >= 500 for code in codes):
                raise PermanentError(f"the mail server refused every recipient: {refused}") from None
            raise TransientError(f"the mail server deferred recipients: {refused}") from None
        except smtplib.SMTPResponseException as exc:  # sender refused, authentication, data refused
            answer = f"the mail server answered {exc.smtp_code} {_text(exc.smtp_error)}"
            raise (PermanentError if exc.smtp_code >= 500 else TransientError)(answer) from None
        except (smtplib.SMTPException, OSError) as exc:  # disconnected, refused, timed out
            if getattr(connection, "data_sent", False):  # readiness.alerts.smtp.EmailBackend
                raise UncertainError(
                    "may have been sent: the mail server received the whole message, then its answer "
                    f"never came ({exc or type(exc).__name__}). Not sent again, so as not to send it "
                    "twice; check with the recipients"
                ) from None
            raise TransientError(f"could not send mail: {exc or type(exc).__name__}") from None


def _text(answer: bytes | str) -> str:
    text = answer.decode(errors="replace") if isinstance(answer, bytes) else str(answer)
    return text[:ERROR_MAX]


def transport_for(channel: Channel) -> Transport:
    if channel.kind == Channel.Kind.WEBHOOK:
        return WebhookTransport(channel.url)
    if channel.kind == Channel.Kind.EMAIL:
        return EmailTransport(list(channel.to))
    raise PermanentError(f"unknown channel kind {channel.kind!r}")
