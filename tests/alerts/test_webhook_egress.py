"""Where a webhook may go (readiness/security/egress.py): never to a denied address, only to the
address that was checked, never through a proxy named by the environment; and how little of a failed
webhook's reply is read and kept. The receivers are real local HTTP servers; DNS, the outside world, is
patched at its one point (socket.getaddrinfo)."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from readiness.alerts.sending import delivery_send
from readiness.alerts.transports import Message, PermanentError, TransientError, WebhookTransport
from readiness.projects.models import Project
from tests.alerts.conftest import Receiver, go_then_no_go, only_delivery, start_receiver, webhook
from tests.telemetry.healthchecks.test_probes import DENIED_HOSTS

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


def message() -> Message:
    return Message(
        subject="s",
        text="t",
        html="<p>h</p>",
        payload={"text": "hi"},
        idempotency_key="k-1",
        message_id="<k-1@readiness>",
    )


@pytest.mark.parametrize(("host", "network"), DENIED_HOSTS)
def test_webhook_to_a_default_denied_address_is_refused_without_connecting(
    receiver: Receiver, host: str, network: str
) -> None:
    # The port of a live receiver: 0.0.0.0 and :: reach this very machine when connected to.
    url = f"http://{host}:{receiver.port}/hooks/readiness"
    refused = f"refused: {host.strip('[]')} is in the denied network {network}"
    with pytest.raises(PermanentError, match=re.escape(refused)):
        WebhookTransport(url).send(message())
    assert receiver.received == []


def test_webhook_goes_to_the_address_that_was_checked(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A name that answers the check with an allowed address, and any later lookup with the metadata
    # service (DNS rebinding): the POST must go where the check looked, and the name stay its Host.
    lookups: list[str] = []
    real = socket.getaddrinfo

    def rebinding(host: object, port: object, *args: object, **kwargs: object) -> list[tuple]:
        if host != "hooks.rebinding.test":
            return real(host, port, *args, **kwargs)  # type: ignore[arg-type]
        lookups.append(host)
        address = "127.0.0.1" if len(lookups) == 1 else "169.254.169.254"
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    WebhookTransport(f"http://hooks.rebinding.test:{receiver.port}/hooks/readiness", timeout=2.0).send(
        message()
    )
    [request] = receiver.received
    assert request.headers["Host"] == f"hooks.rebinding.test:{receiver.port}"
    assert lookups == ["hooks.rebinding.test"]


def test_webhook_ignores_proxy_settings_of_the_environment(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Through a proxy, the proxy would resolve and connect: the address checked would not be the one
    # reached. A second receiver stands in as the proxy and must hear nothing.
    proxy_server, proxy = start_receiver()
    try:
        for name in PROXY_VARIABLES:
            monkeypatch.setenv(name, f"http://127.0.0.1:{proxy.port}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        WebhookTransport(receiver.url()).send(message())
    finally:
        proxy_server.shutdown()
        proxy_server.server_close()
    assert len(receiver.received) == 1
    assert proxy.received == []


# --- What is kept of a failed webhook's reply --------------------------------------------------------


class LongReply(BaseHTTPRequestHandler):
    """Answers every POST with an error and a reply far longer than anyone needs to read: 100 MB,
    written until the client hangs up. ``written`` counts what the client let it send."""

    status = 400
    written = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(self.status)
        self.send_header("Content-Length", str(100 * 1024 * 1024))
        self.end_headers()
        chunk = b"<p>the hook is gone</p>\n" * 2_730  # 64 KiB
        try:
            for _ in range(1_600):
                self.wfile.write(chunk)
                type(self).written += len(chunk)
        except OSError:  # the client hung up, as it should
            pass

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def long_reply() -> Iterator[str]:
    LongReply.written = 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), LongReply)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks/readiness"
    server.shutdown()
    server.server_close()


EXCERPT = (" ".join(["<p>the hook is gone</p>"] * 9))[:199] + "…"


@pytest.mark.django_db
def test_a_failed_webhooks_reply_is_stored_cut_to_200_characters(project: Project, long_reply: str) -> None:
    channel = webhook(project, long_reply)
    go_then_no_go(project)
    assert delivery_send(delivery_id=only_delivery(channel).pk) == "failed"
    channel.refresh_from_db()
    assert not channel.enabled
    assert channel.last_error == f"{long_reply} answered HTTP 400: {EXCERPT}"
    assert len(EXCERPT) == 200


def test_a_failed_webhooks_long_reply_is_not_read_to_its_end(long_reply: str) -> None:
    LongReply.status = 503
    try:
        with pytest.raises(TransientError, match=re.escape(f"answered HTTP 503: {EXCERPT}")):
            WebhookTransport(long_reply, timeout=5.0).send(message())
    finally:
        LongReply.status = 400
    # What the kernel's socket buffers took before the hang-up, not the 100 MB on offer.
    assert LongReply.written < 30 * 1024 * 1024
