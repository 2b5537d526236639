"""Probes against a real local HTTP server: each way a target can be up or down, the concurrency bound,
and the refusals that keep probes away from denied networks (server-side request forgery)."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import subprocess
import sys
import time
import uuid
from ipaddress import ip_network
from pathlib import Path

import pytest

from readiness.security.egress import deny_networks
from readiness.telemetry.probes import ProbeResult, ProbeTarget, probe, probe_all, probe_client
from tests.telemetry.healthchecks.conftest import TargetServer, TLSServer

DEFAULT_NETWORKS = [
    *("169.254.0.0/16", "fe80::/10", "fd00:ec2::254/128", "100.100.100.200/32", "0.0.0.0/8", "::/128")
]
DEFAULT_DENY = [ip_network(network) for network in DEFAULT_NETWORKS]
# Each default-denied address, and the IPv4-mapped IPv6 form of each IPv4 one: (URL host, network).
DENIED_HOSTS = [
    ("169.254.169.254", "169.254.0.0/16"),
    ("[::ffff:169.254.169.254]", "169.254.0.0/16"),
    ("[fe80::1]", "fe80::/10"),
    ("[fd00:ec2::254]", "fd00:ec2::254/128"),
    ("100.100.100.200", "100.100.100.200/32"),
    ("[::ffff:100.100.100.200]", "100.100.100.200/32"),
    ("0.0.0.0", "0.0.0.0/8"),  # noqa: S104 -- an address to refuse, not one to listen on
    ("[::ffff:0.0.0.0]", "0.0.0.0/8"),
    ("[::]", "::/128"),
]
ROOT = Path(__file__).resolve().parents[3]


def run_one(target: ProbeTarget, deny: list = DEFAULT_DENY) -> ProbeResult:
    async def go() -> ProbeResult:
        async with probe_client() as client:
            return await probe(target, client=client, deny=deny)

    return asyncio.run(go())


def target(url: str, **fields: object) -> ProbeTarget:
    return ProbeTarget(name=fields.pop("name", "api"), url=url, **fields)  # type: ignore[arg-type]


def test_answering_target_is_up_with_its_latency(target_server: TargetServer) -> None:
    result = run_one(target(target_server.url("/up"), expected_body_contains="status: ok"))
    assert result.up
    assert result.status == 200
    assert result.reason == ""
    assert result.latency_ms is not None and 0 < result.latency_ms < 1000


def test_head_probe_is_up(target_server: TargetServer) -> None:
    assert run_one(target(target_server.url("/up"), method="HEAD")).up


def test_head_probe_cannot_check_a_body(target_server: TargetServer) -> None:
    result = run_one(target(target_server.url("/up"), method="HEAD", expected_body_contains="ok"))
    assert not result.up
    assert result.reason == "a HEAD answer has no body to contain 'ok'"


def test_wrong_status_is_down_with_both_statuses(target_server: TargetServer) -> None:
    result = run_one(target(target_server.url("/down")))
    assert not result.up
    assert result.reason == "503, expected 200"
    assert result.status == 503
    assert result.latency_ms is not None


def test_expected_non_200_status_is_up(target_server: TargetServer) -> None:
    assert run_one(target(target_server.url("/down"), expected_status=503)).up


def test_body_without_expected_text_is_down(target_server: TargetServer) -> None:
    result = run_one(target(target_server.url("/wrong-body"), expected_body_contains="status: ok"))
    assert not result.up
    assert result.reason == "body does not contain 'status: ok'"


def test_redirect_is_not_followed(target_server: TargetServer) -> None:
    # Following it could lead a probe to an address nobody checked.
    result = run_one(target(target_server.url("/redirect")))
    assert not result.up
    assert result.reason == "302, expected 200"


def test_silent_target_is_down_after_its_timeout(target_server: TargetServer) -> None:
    started = time.monotonic()
    result = run_one(target(target_server.url("/slow"), timeout=0.5))
    elapsed = time.monotonic() - started
    assert not result.up
    assert result.reason == "no answer within 0.5 s"
    assert result.latency_ms is None
    assert 0.45 < elapsed < 1.0


def test_closed_port_is_down_as_refused(refused_port: int) -> None:
    result = run_one(target(f"http://127.0.0.1:{refused_port}/health"))
    assert not result.up
    assert result.reason == "connection refused"
    assert result.latency_ms is None


def test_unresolvable_host_is_down_as_dns_failure() -> None:
    # .invalid never resolves (RFC 6761).
    result = run_one(target("http://readiness-probe.invalid/health"))
    assert not result.up
    assert result.reason.startswith("DNS failure: cannot resolve readiness-probe.invalid")


def test_tls_handshake_failure_is_down_as_tls_error(target_server: TargetServer) -> None:
    # https:// to a plain-HTTP port: the handshake meets an HTTP answer.
    result = run_one(target(target_server.url("/up", scheme="https")))
    assert not result.up
    assert result.reason.startswith("TLS error:")


def test_slow_target_does_not_delay_the_others(target_server: TargetServer) -> None:
    targets = [target(target_server.url("/slow"), name="slow", timeout=1.0)] + [
        target(target_server.url("/up"), name=f"fast-{n}", timeout=1.0) for n in range(20)
    ]
    started = time.monotonic()
    results = asyncio.run(probe_all(targets, concurrency=5, deny=DEFAULT_DENY))
    elapsed = time.monotonic() - started
    assert results[0].reason == "no answer within 1 s"
    assert all(r.up for r in results[1:])
    # The cycle costs the slow target's timeout, not that plus the fast ones queued behind it.
    assert elapsed < 1.5
    assert max(r.latency_ms or 0 for r in results[1:]) < 500


def test_concurrency_is_bounded(target_server: TargetServer) -> None:
    # 6 silent targets, 3 slots: two rounds of the 0.3 s timeout.
    targets = [target(target_server.url("/slow"), name=f"s{n}", timeout=0.3) for n in range(6)]
    started = time.monotonic()
    results = asyncio.run(probe_all(targets, concurrency=3, deny=DEFAULT_DENY))
    elapsed = time.monotonic() - started
    assert [r.up for r in results] == [False] * 6
    assert 0.55 < elapsed < 1.2


def test_results_keep_the_order_of_the_targets(target_server: TargetServer, refused_port: int) -> None:
    targets = [
        target(target_server.url("/down"), name="a"),
        target(target_server.url("/up"), name="b"),
        target(f"http://127.0.0.1:{refused_port}/", name="c"),
    ]
    results = asyncio.run(probe_all(targets, concurrency=10, deny=DEFAULT_DENY))
    assert [r.reason for r in results] == ["503, expected 200", "", "connection refused"]


# --- server-side request forgery --------------------------------------------------------------


def test_metadata_address_is_refused_without_connecting() -> None:
    started = time.monotonic()
    result = run_one(target("http://169.254.169.254/latest/meta-data/", timeout=5.0))
    # Refused before any packet: a connection attempt would have waited out the timeout.
    assert time.monotonic() - started < 0.5
    assert not result.up
    assert result.latency_ms is None
    assert result.reason == "denied: 169.254.169.254 is in the denied network 169.254.0.0/16"


def test_name_resolving_to_metadata_address_is_refused(fake_dns: dict[str, list[str]]) -> None:
    fake_dns["innocent.test"] = ["169.254.169.254"]
    result = run_one(target("http://innocent.test/health"))
    assert not result.up
    assert result.reason == (
        "denied: innocent.test resolves to 169.254.169.254, in the denied network 169.254.0.0/16"
    )


def test_name_with_any_denied_address_is_refused(fake_dns: dict[str, list[str]]) -> None:
    fake_dns["mixed.test"] = ["127.0.0.1", "169.254.169.254"]
    assert run_one(target("http://mixed.test/health")).reason.startswith("denied: mixed.test resolves to")


def test_ipv4_mapped_ipv6_metadata_address_is_refused() -> None:
    result = run_one(target("http://[::ffff:169.254.169.254]/"))
    assert result.reason == "denied: ::ffff:169.254.169.254 is in the denied network 169.254.0.0/16"


def test_ipv6_link_local_is_refused() -> None:
    assert run_one(target("http://[fe80::1]/")).reason == "denied: fe80::1 is in the denied network fe80::/10"


def test_loopback_refused_when_the_setting_denies_it(
    target_server: TargetServer, fake_dns: dict[str, list[str]], settings: object
) -> None:
    settings.READINESS_PROBE_DENY_NETWORKS = [*settings.READINESS_PROBE_DENY_NETWORKS, "127.0.0.0/8"]
    fake_dns["model.internal.test"] = ["127.0.0.1"]
    path = f"/up?probe={uuid.uuid4()}"
    targets = [
        target(target_server.url(path)),
        target(target_server.url(path, host="model.internal.test")),
    ]
    results = asyncio.run(probe_all(targets, concurrency=2, deny=deny_networks()))
    assert [r.reason for r in results] == [
        "denied: 127.0.0.1 is in the denied network 127.0.0.0/8",
        "denied: model.internal.test resolves to 127.0.0.1, in the denied network 127.0.0.0/8",
    ]
    assert not [request for request in target_server.requests if request[0] == path]


@pytest.mark.parametrize(("host", "network"), DENIED_HOSTS)
def test_every_default_denied_address_is_refused(
    target_server: TargetServer, host: str, network: str
) -> None:
    # The port of a live local server: 0.0.0.0 and :: reach this very machine when connected to.
    path = f"/up?probe={uuid.uuid4()}"
    result = run_one(target(f"http://{host}:{target_server.port}{path}"), deny=deny_networks())
    assert result.reason == f"denied: {host.strip('[]')} is in the denied network {network}"
    assert not [request for request in target_server.requests if request[0] == path]


def test_probe_ignores_proxy_settings_of_the_environment(
    target_server: TargetServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A proxy would resolve and connect in our stead: the address checked would not be the one asked.
    with socket.socket() as proxy:
        proxy.bind(("127.0.0.1", 0))
        proxy.listen()
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
            monkeypatch.setenv(name, f"http://127.0.0.1:{proxy.getsockname()[1]}")
        assert run_one(target(target_server.url("/up"), timeout=2.0)).up
        proxy.setblocking(False)
        with pytest.raises(BlockingIOError):
            proxy.accept()  # nobody connected to the proxy


def test_loopback_allowed_by_default(target_server: TargetServer, settings: object) -> None:
    results = asyncio.run(probe_all([target(target_server.url("/up"))], concurrency=1, deny=deny_networks()))
    assert results[0].up


def test_probe_connects_to_the_vetted_address_with_the_name_as_host(
    target_server: TargetServer, fake_dns: dict[str, list[str]]
) -> None:
    fake_dns["model.internal.test"] = ["127.0.0.1"]
    path = f"/up?probe={uuid.uuid4()}"
    assert run_one(target(target_server.url(path, host="model.internal.test"))).up
    assert (path, f"model.internal.test:{target_server.port}") in target_server.requests


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://127.0.0.1/file", "ftp is not http or https"),
        ("file:///etc/passwd", "file is not http or https"),
        ("gopher://127.0.0.1:70/", "gopher is not http or https"),
    ],
)
def test_non_http_scheme_is_refused(url: str, reason: str) -> None:
    result = run_one(target(url))
    assert not result.up
    assert result.reason == reason


def test_deny_setting_extends_from_the_environment() -> None:
    code = "import django; django.setup(); from django.conf import settings; "
    code += "print(settings.READINESS_PROBE_DENY_NETWORKS)"
    env = {**os.environ, "READINESS_PROBE_DENY_NETWORKS": "127.0.0.0/8, 10.0.0.0/8"}
    env["DJANGO_SETTINGS_MODULE"] = "readiness.settings"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == str([*DEFAULT_NETWORKS, "127.0.0.0/8", "10.0.0.0/8"])


def test_malformed_deny_network_stops_start_and_names_it() -> None:
    env = {**os.environ, "READINESS_PROBE_DENY_NETWORKS": "10.0.0.0/33"}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert "READINESS_PROBE_DENY_NETWORKS" in result.stderr


# --- TLS to the vetted address ------------------------------------------------------------------


def trusting(tls_server: TLSServer) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=tls_server.cafile)


def run_tls(target_: ProbeTarget, verify: ssl.SSLContext | bool) -> ProbeResult:
    async def go() -> ProbeResult:
        async with probe_client(verify=verify) as client:
            return await probe(target_, client=client, deny=DEFAULT_DENY)

    return asyncio.run(go())


def test_https_to_the_vetted_address_verifies_the_name(
    tls_server: TLSServer, fake_dns: dict[str, list[str]]
) -> None:
    # Connected to 127.0.0.1, yet the certificate is checked against the name (sent as SNI).
    fake_dns[tls_server.hostname] = ["127.0.0.1"]
    result = run_tls(
        target(tls_server.url("/up", host=tls_server.hostname, scheme="https")),
        trusting(tls_server),
    )
    assert result.up, result.reason


def test_certificate_for_another_name_is_a_tls_error(
    tls_server: TLSServer, fake_dns: dict[str, list[str]]
) -> None:
    fake_dns["impostor.test"] = ["127.0.0.1"]
    url = tls_server.url("/up", host="impostor.test", scheme="https")
    result = run_tls(target(url), trusting(tls_server))
    assert not result.up
    assert result.reason.startswith("TLS error: Hostname mismatch")


def test_untrusted_certificate_is_a_tls_error(tls_server: TLSServer, fake_dns: dict[str, list[str]]) -> None:
    fake_dns[tls_server.hostname] = ["127.0.0.1"]
    url = tls_server.url("/up", host=tls_server.hostname, scheme="https")
    result = run_tls(target(url), True)
    assert not result.up
    assert result.reason.startswith("TLS error: self-signed certificate")


def test_hanging_dns_does_not_delay_other_lookups(
    target_server: TargetServer, fake_dns: dict[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A resolver that never answers for some names holds a thread each; the healthy names' lookups
    # must not queue behind them past their own timeout.
    patched = socket.getaddrinfo

    def getaddrinfo(host: object, *args: object, **kwargs: object) -> list[tuple]:
        if isinstance(host, str) and host.endswith(".hang.test"):
            time.sleep(2.0)
        return patched(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    fake_dns["model.internal.test"] = ["127.0.0.1"]
    hanging = [target(f"http://n{n}.hang.test/", name=f"h{n}", timeout=0.5) for n in range(20)]
    healthy = [
        target(target_server.url("/up", host="model.internal.test"), name=f"ok{n}", timeout=0.5)
        for n in range(5)
    ]
    started = time.monotonic()
    results = asyncio.run(probe_all(hanging + healthy, concurrency=50, deny=DEFAULT_DENY))
    assert time.monotonic() - started < 1.5
    assert {r.reason for r in results[:20]} == {"no answer within 0.5 s"}
    assert all(r.up for r in results[20:]), [r.reason for r in results[20:]]
