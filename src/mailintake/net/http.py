"""The one place HTTP clients are built: timeouts, the mailbox's proxy (with its user name
and password), TLS verification. Transport errors are translated here into NetworkError.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field

import httpx2

from mailintake.errors import NetworkError

DEFAULT_TIMEOUT = httpx2.Timeout(30.0, connect=10.0)


@dataclass(frozen=True)
class ProxySettings:
    address: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return self.address if "://" in self.address else f"http://{self.address}"


def build_client(
    *,
    proxy: ProxySettings | None = None,
    timeout: httpx2.Timeout = DEFAULT_TIMEOUT,
    verify: ssl.SSLContext | str | bool = True,
    transport: httpx2.BaseTransport | None = None,
) -> httpx2.Client:
    """A client that uses exactly the given proxy (never proxy environment variables)."""
    proxy_config = None
    if proxy is not None:
        auth = (proxy.username, proxy.password or "") if proxy.username else None
        proxy_config = httpx2.Proxy(proxy.url, auth=auth)
    return httpx2.Client(
        proxy=proxy_config,
        timeout=timeout,
        verify=verify,
        transport=transport,
        trust_env=False,
        follow_redirects=False,
        headers={"User-Agent": "mailintake"},
    )


def translate(exc: httpx2.HTTPError, what: str) -> NetworkError:
    """A transport failure as the NetworkError that says what went wrong."""
    if isinstance(exc, httpx2.ProxyError):
        return NetworkError(f"{what}: the proxy refused the request ({exc})")
    if isinstance(exc, httpx2.TimeoutException):
        return NetworkError(f"{what}: timed out")
    if isinstance(exc, httpx2.ConnectError):
        return NetworkError(f"{what}: cannot connect ({exc})")
    return NetworkError(f"{what}: {exc.__class__.__name__}: {exc}")
