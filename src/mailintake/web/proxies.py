"""Who the client is behind a reverse proxy: ``X-Forwarded-For`` and ``X-Forwarded-Proto``
are believed only from the proxies named in the settings (``trusted_proxies``; none by
default). Anyone can send those headers, so believing them from any peer would let a
client pick its own address (and, for instance, a fresh sign-in allowance per request).

With a trusted peer, the client is the right-most address of ``X-Forwarded-For`` that is not
itself a trusted proxy (each proxy appends the address it received the request from), and
``X-Forwarded-Proto`` (``http`` or ``https``) becomes the request's scheme.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from starlette.types import ASGIApp, Receive, Scope, Send

from mailintake.errors import ConfigError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_proxies(values: Iterable[str]) -> tuple[Network, ...]:
    """The networks of ``values`` (addresses or CIDR networks); a clear error for others."""
    networks: list[Network] = []
    problems = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            problems.append(
                f"trusted_proxies: '{value}' is not an IP address or network "
                "(e.g. 10.0.0.5 or 10.0.0.0/24)"
            )
    if problems:
        raise ConfigError(problems)
    return tuple(networks)


def _address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    value = value.strip()
    if value.startswith("[") and "]" in value:  # [v6]:port
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # v4:port
        value = value.partition(":")[0]
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def trusted(address: str | None, proxies: Sequence[Network]) -> bool:
    found = _address(address) if address else None
    return found is not None and any(found in network for network in proxies)


def forwarded_client(header: str, proxies: Sequence[Network]) -> str | None:
    """The client address of an ``X-Forwarded-For`` value sent by a trusted proxy."""
    hops = [hop.strip() for hop in header.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not trusted(hop, proxies):
            found = _address(hop)
            return None if found is None else str(found)
    return str(_address(hops[0])) if hops and _address(hops[0]) else None


class ForwardedMiddleware:
    """Replaces the peer's address (and scheme) by the forwarded ones, for trusted peers."""

    def __init__(self, app: ASGIApp, proxies: Sequence[Network]) -> None:
        self.app = app
        self.proxies = tuple(proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and self.proxies:
            peer = scope.get("client")
            if peer and trusted(peer[0], self.proxies):
                self._rewrite(scope)
        await self.app(scope, receive, send)

    def _rewrite(self, scope: Scope) -> None:
        forwarded_for = [v for k, v in scope["headers"] if k == b"x-forwarded-for"]
        proto = [v for k, v in scope["headers"] if k == b"x-forwarded-proto"]
        if forwarded_for:
            client = forwarded_client(b",".join(forwarded_for).decode("latin-1"), self.proxies)
            if client is not None:
                scope["client"] = (client, 0)
        if proto:
            scheme = proto[-1].decode("latin-1").split(",")[-1].strip().lower()
            if scheme in ("http", "https"):
                websocket = scope["type"] == "websocket"
                scope["scheme"] = scheme.replace("http", "ws") if websocket else scheme
