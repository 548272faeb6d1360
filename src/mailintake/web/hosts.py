"""The host names the web admin answers to (the ``Host`` header), checked before anything
else runs. A web page open in the administrator's browser can point a name of its own at
127.0.0.1 (DNS rebinding) and then talk to a ``serve`` bound there as if same-origin: its
requests carry ``Host: <that name>``, which is refused here with 400.

Names come from the ``allowed_hosts`` setting (``MAILINTAKE_ALLOWED_HOSTS``,
``serve --allowed-host``); by default the address ``serve`` listens on, ``localhost``,
``127.0.0.1`` and ``[::1]``. A name matches with any port; ``*.example.com`` matches the
names under example.com; ``*`` alone turns the check off.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

from mailintake.errors import ConfigError
from mailintake.observability.logging import get_logger
from mailintake.web.security import SECURITY_HEADERS

log = get_logger(__name__)
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
_ANY_ADDRESS = {"0.0.0.0", "::", "[::]", ""}  # noqa: S104 - names no address to allow


def _name(value: str) -> str:
    """A host name in one form: lower case, no trailing dot, IPv6 addresses in brackets."""
    value = value.strip().lower().rstrip(".")
    try:
        if ipaddress.ip_address(value).version == 6:
            return f"[{value}]"
    except ValueError:
        pass
    return value


def default_hosts(bound: str | None) -> tuple[str, ...]:
    """The names accepted when none are configured: loopback, and the bound address."""
    names = list(LOOPBACK_NAMES)
    if bound is not None and _name(bound) not in _ANY_ADDRESS and _name(bound) not in names:
        names.append(_name(bound))
    return tuple(names)


def parse_hosts(values: Iterable[str]) -> tuple[str, ...]:
    names, problems = [], []
    for value in values:
        name = _name(value)
        label = name[2:] if name.startswith("*.") else name
        if name != "*" and (not label or any(c in label for c in " /\\@?#*")):
            problems.append(f"allowed_hosts: '{value}' is not a host name (e.g. admin.example.com)")
        names.append(name)
    if problems:
        raise ConfigError(problems)
    return tuple(names)


def host_of(header: str) -> str:
    """The name part of a ``Host`` header value (without the port)."""
    header = header.strip()
    if header.startswith("["):
        end = header.find("]")
        return _name(header[: end + 1]) if end > 0 else ""
    return _name(header.rpartition(":")[0] if ":" in header else header)


def allowed(header: str | None, names: tuple[str, ...]) -> bool:
    if "*" in names:
        return True
    if not header:
        return False
    host = host_of(header)
    return bool(host) and any(
        host == name or (name.startswith("*.") and host.endswith(name[1:])) for name in names
    )


class HostCheckMiddleware:
    """Answers 400 to a request whose ``Host`` is not one of ``names`` (see the module)."""

    def __init__(self, app: ASGIApp, names: tuple[str, ...]) -> None:
        self.app = app
        self.names = names

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        header = next((v for k, v in scope["headers"] if k == b"host"), b"").decode("latin-1")
        if allowed(header, self.names):
            await self.app(scope, receive, send)
            return
        log.warning("web.host_refused", host=header[:100])
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        body = json.dumps(
            {
                "error": "host not allowed",
                "detail": "this server does not answer to the host name in the request; "
                "its administrator can allow it with MAILINTAKE_ALLOWED_HOSTS or "
                "mailintake serve --allowed-host NAME",
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 400,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    *((k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
