"""Where Readiness may send requests of its own (PRODUCT.md §4): health-check probes, webhooks and pull
sources all go to URLs that people type, so all go through these rules against server-side request
forgery, and nowhere else decides them.

- The URL is http or https with a host.
- Its host is resolved once, now (not when it was saved: DNS can be changed to point at a metadata
  service afterwards), and refused when ANY of its addresses is in a denied network
  (``READINESS_PROBE_DENY_NETWORKS``: link-local, the cloud metadata addresses, 0.0.0.0 and ::), so a
  name listing a public and a denied address cannot be used to reach the denied one. An IPv4-mapped
  IPv6 address (``::ffff:169.254.169.254``) reaches the IPv4 host, so it is judged as that host too.
- The request connects to the address that was checked, never to the name: resolving again at connect
  time could give another answer (DNS rebinding). The name stays in the Host header and, for TLS, in
  SNI and the certificate check, so the service sees and proves the name it was asked by.
- Clients ignore HTTP(S)_PROXY and friends (``trust_env=False``): through a proxy, the proxy would
  resolve and connect, and the check would have judged the wrong host. They follow no redirect: a 30x
  to another host would reach an address nobody checked.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from functools import partial
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import Any

import httpx
from django.conf import settings

Network = IPv4Network | IPv6Network
Address = IPv4Address | IPv6Address

SCHEMES = ("http", "https")


class EgressRefused(Exception):
    """The request was not sent; the message says why, for people."""


class InvalidDestination(EgressRefused):
    """The URL cannot be asked (not http(s), no host, malformed): only a person can fix it."""


class DeniedDestination(EgressRefused):
    """The host is, or resolves to, an address in a denied network."""


class UnresolvedDestination(EgressRefused):
    """The host name does not resolve now; it may later."""


def deny_networks() -> list[Network]:
    return [ip_network(network) for network in settings.READINESS_PROBE_DENY_NETWORKS]


def denied_by(address: Address, deny: Iterable[Network]) -> Network | None:
    """The denied network ``address`` is in, if any."""
    candidates: list[Address] = [address]
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        candidates.append(address.ipv4_mapped)
    for network in deny:
        if any(candidate in network for candidate in candidates):
            return network
    return None


@dataclass(frozen=True)
class Destination:
    """A URL whose host was resolved and checked: requests go to ``address``, in the URL's name."""

    url: httpx.URL
    address: Address

    def request(self, client: httpx.Client | httpx.AsyncClient, method: str, **kwargs: Any) -> httpx.Request:
        host = self.url.raw_host.decode("ascii")
        extensions: dict[str, Any] = kwargs.pop("extensions", {})
        if self.url.scheme == "https" and str(self.address) != host:
            extensions["sni_hostname"] = host
        headers = {**kwargs.pop("headers", {}), "Host": self.url.netloc.decode("ascii")}
        pinned = self.url.copy_with(host=str(self.address))
        return client.build_request(method, pinned, headers=headers, extensions=extensions, **kwargs)


def http_client(**kwargs: Any) -> httpx.Client:
    return httpx.Client(trust_env=False, follow_redirects=False, **kwargs)


def async_http_client(**kwargs: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(trust_env=False, follow_redirects=False, **kwargs)


def destination(url: str, *, deny: Sequence[Network]) -> Destination:
    """Resolve and check ``url``'s host, blocking (a worker sending one request)."""
    parsed, host, port = _parse(url)
    addresses = _literal(host)
    if addresses is None:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise UnresolvedDestination(f"cannot resolve {host} ({exc.strerror})") from None
        addresses = _resolved(host, infos)
    return _checked(parsed, host, addresses, deny)


async def destination_async(
    url: str, *, deny: Sequence[Network], resolver: Executor | None = None
) -> Destination:
    """Resolve and check ``url``'s host without blocking the event loop: the system resolver blocks,
    so the lookup runs in ``resolver``'s threads."""
    parsed, host, port = _parse(url)
    addresses = _literal(host)
    if addresses is None:
        lookup = partial(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
        try:
            infos = await asyncio.get_running_loop().run_in_executor(resolver, lookup)
        except socket.gaierror as exc:
            raise UnresolvedDestination(f"cannot resolve {host} ({exc.strerror})") from None
        addresses = _resolved(host, infos)
    return _checked(parsed, host, addresses, deny)


def _parse(url: str) -> tuple[httpx.URL, str, int]:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise InvalidDestination(f"invalid URL: {exc}") from None
    if parsed.scheme not in SCHEMES:
        raise InvalidDestination(f"{parsed.scheme or 'a relative URL'} is not http or https")
    host = parsed.raw_host.decode("ascii")
    if not host:
        raise InvalidDestination("invalid URL: no host")
    return parsed, host, parsed.port or (443 if parsed.scheme == "https" else 80)


def _literal(host: str) -> list[Address] | None:
    try:
        return [ip_address(host)]
    except ValueError:
        return None


def _resolved(host: str, infos: list[tuple[Any, ...]]) -> list[Address]:
    addresses = list(dict.fromkeys(ip_address(info[4][0]) for info in infos))
    if not addresses:
        raise UnresolvedDestination(f"{host} has no address")
    return addresses


def _checked(url: httpx.URL, host: str, addresses: list[Address], deny: Sequence[Network]) -> Destination:
    for address in addresses:
        network = denied_by(address, deny)
        if network is not None:
            where = f"{host} is" if _literal(host) else f"{host} resolves to {address},"
            raise DeniedDestination(f"{where} in the denied network {network}")
    return Destination(url=url, address=addresses[0])
