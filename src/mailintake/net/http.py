"""The one place HTTP clients are built: timeouts, the mailbox's proxy (with its user name
and password), TLS verification. Transport errors are translated here, in ``translate``, into
NetworkError messages that name the cause and the setting to fix; no message shows the proxy
password (messages name the proxy by its address with any user name and password removed).
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx2

from mailintake.errors import NetworkError
from mailintake.net import tls

DEFAULT_TIMEOUT = httpx2.Timeout(30.0, connect=10.0)
_PROXY_EXTENSION = "mailintake.proxy"
_DNS_FAILURES = (
    "Name or service not known",
    "nodename nor servname",
    "Temporary failure in name resolution",
    "No address associated with hostname",
    "getaddrinfo failed",
    "Name does not resolve",
)
_TLS_FAILURES = ("CERTIFICATE_VERIFY_FAILED", "certificate verify failed")
_STATUS = re.compile(r"^\s*(\d{3})\b")


@dataclass(frozen=True)
class ProxySettings:
    address: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return self.address if "://" in self.address else f"http://{self.address}"

    @property
    def display(self) -> str:
        """The proxy's address for messages: never any user name or password in it."""
        parts = urlsplit(self.url)
        netloc = parts.netloc.rpartition("@")[2]
        return f"{parts.scheme}://{netloc}" if netloc else self.address.rpartition("@")[2]

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or self.address.rpartition("@")[2]

    def redact(self, text: str) -> str:
        """``text`` without the proxy password (library messages may quote a proxy URL)."""
        if self.password:
            text = text.replace(self.password, "***")
        return text.replace(self.url, self.display)


class MailClient(httpx2.Client):
    """An httpx2 client that remembers the proxy it goes through (for error messages)."""

    def __init__(self, *, proxy_settings: ProxySettings | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.proxy_settings = proxy_settings


def proxy_auth_refused(proxy: ProxySettings) -> NetworkError:
    given = (
        "refused the proxy user name or password"
        if proxy.username
        else "requires a user name and password"
    )
    return NetworkError(
        f"the proxy {proxy.display} {given} (HTTP 407): check proxy.username and proxy.password"
    )


def _proxy_unreachable_target(proxy: ProxySettings, where: str, status: str) -> NetworkError:
    return NetworkError(
        f"the proxy {proxy.display} could not reach {where} ({status}): check that the host "
        "name resolves and the server is reachable from the proxy"
    )


def _where(url: httpx2.URL) -> str:
    return f"{url.host}:{url.port or (443 if url.scheme == 'https' else 80)}"


def _proxy_basic_401(response: httpx2.Response) -> bool:
    """Some proxies (tinyproxy 1.11) refuse wrong proxy credentials with a 401 and a Basic
    challenge on an HTML page; the services mailintake calls answer 401 with JSON and Bearer.
    Only a plain-http response can come from the proxy itself (https goes through CONNECT)."""
    challenge = response.headers.get("www-authenticate", "").lower()
    return (
        response.status_code == 401
        and response.request.url.scheme == "http"
        and challenge.startswith("basic")
        and response.headers.get("content-type", "").startswith("text/html")
    )


def written_by_proxy(response: httpx2.Response) -> bool:
    """The answer is the proxy's own (refused credentials, could not connect), not the
    server's: nothing to retry, the response hook raises it as a ProxyError."""
    return (
        response.status_code == 407
        or _proxy_basic_401(response)
        or _proxy_could_not_connect(response)
    )


def _proxy_could_not_connect(response: httpx2.Response) -> bool:
    """A plain-http error page the proxy wrote because it could not reach the target (DNS or
    connection failure on the proxy's side): tinyproxy's "500 Unable to connect", Squid's
    pages marked with X-Squid-Error."""
    if response.status_code < 500 or response.request.url.scheme != "http":
        return False
    server = response.headers.get("server", "").lower()
    return "x-squid-error" in response.headers or (
        server.startswith("tinyproxy") and response.reason_phrase == "Unable to connect"
    )


class _ResendDropped(httpx2.BaseTransport):
    """Through a proxy to a plain-http server: a request that went out on a kept-alive
    connection the proxy had already closed is sent again, once, on a new one. tinyproxy
    closes its client's connection after each answer without saying so (no ``Connection:
    close``); when the next request goes out before the close is seen (a busy machine), it
    fails with "Server disconnected without sending a response" although the proxy never
    forwarded it (measured: 55 such failures in 25 s of back-to-back token requests with
    the two cores busy, none after). Only a body that can be sent again is."""

    def __init__(self, inner: httpx2.BaseTransport) -> None:
        self._inner = inner

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        try:
            return self._inner.handle_request(request)
        except httpx2.RemoteProtocolError as exc:
            if (
                "without sending a response" not in str(exc)
                or request.url.scheme != "http"
                or not isinstance(request.stream, httpx2.ByteStream)
            ):
                raise
            return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


def build_client(
    *,
    proxy: ProxySettings | None = None,
    timeout: httpx2.Timeout = DEFAULT_TIMEOUT,
    verify: ssl.SSLContext | str | bool = True,
    transport: httpx2.BaseTransport | None = None,
    wrap: Callable[[httpx2.BaseTransport], httpx2.BaseTransport] | None = None,
) -> MailClient:
    """A client that uses exactly the given proxy (never proxy environment variables).
    ``wrap`` puts a transport of the caller's around the one every request goes through
    (direct or through the proxy), for what must happen per request below the client.

    Through a proxy, a plain-http response the proxy itself wrote (407, or tinyproxy's 401,
    for wrong or missing proxy credentials; "could not connect" pages) raises httpx2's
    ProxyError from a response hook, as https requests through CONNECT do; the caller's edge
    translates either (``translate``)."""
    proxy_config = None
    hooks: dict[str, list[Any]] = {}
    if proxy is not None:
        auth = (proxy.username, proxy.password or "") if proxy.username else None
        proxy_config = httpx2.Proxy(proxy.url, auth=auth)

        def remember_proxy(request: httpx2.Request) -> None:
            request.extensions[_PROXY_EXTENSION] = proxy

        def refuse_proxy_failures(response: httpx2.Response) -> None:
            # An httpx2 error, as for a refused CONNECT: httpx2 closes the response and the
            # adapter's edge translates it once, naming what it was doing (``translate``).
            if response.status_code == 407 or _proxy_basic_401(response):
                status = "407 Proxy Authentication Required"
            elif _proxy_could_not_connect(response):
                status = f"{response.status_code} {response.reason_phrase}".rstrip()
            else:
                return
            raise httpx2.ProxyError(status, request=response.request)

        hooks["request"] = [remember_proxy]
        hooks["response"] = [refuse_proxy_failures]
    context = tls.http_context() if verify is True else verify
    mounts: dict[str, httpx2.BaseTransport | None] | None = None
    if proxy_config is not None:
        through: httpx2.BaseTransport = _ResendDropped(
            httpx2.HTTPTransport(proxy=proxy_config, verify=context, trust_env=False)
        )
        mounts = {"all://": wrap(through) if wrap is not None else through}
        proxy_config = None
    if wrap is not None:
        transport = wrap(transport or httpx2.HTTPTransport(verify=context, trust_env=False))
    return MailClient(
        proxy_settings=proxy,
        proxy=proxy_config,
        mounts=mounts,
        timeout=timeout,
        verify=context,
        transport=transport,
        trust_env=False,
        follow_redirects=False,
        headers={"User-Agent": "mailintake"},
        event_hooks=hooks,
    )


def proxy_of(client: httpx2.Client) -> ProxySettings | None:
    return client.proxy_settings if isinstance(client, MailClient) else None


def _request_of(exc: httpx2.HTTPError) -> httpx2.Request | None:
    try:
        return exc.request
    except RuntimeError:  # no request attached
        return None


def translate(exc: httpx2.HTTPError, what: str, proxy: ProxySettings | None = None) -> NetworkError:
    """A transport failure as the NetworkError that says what went wrong and what to check.

    ``proxy`` defaults to the proxy of the client that sent the request (build_client
    records it on each request)."""
    request = _request_of(exc)
    if proxy is None and request is not None:
        remembered = request.extensions.get(_PROXY_EXTENSION)
        proxy = remembered if isinstance(remembered, ProxySettings) else None
    text = proxy.redact(str(exc)) if proxy is not None else str(exc)
    host = request.url.host if request is not None else "the server"
    where = _where(request.url) if request is not None else "the server"
    via = f" through the proxy {proxy.display}" if proxy is not None else ""
    if isinstance(exc, httpx2.ProxyError):
        # The proxy answered CONNECT with an error status (https targets).
        match = _STATUS.match(text)
        status = match.group(1) if match else ""
        if status in ("407", "401") and proxy is not None:
            return NetworkError(f"{what}: {proxy_auth_refused(proxy)}")
        if status.startswith("5") and proxy is not None:
            return NetworkError(f"{what}: {_proxy_unreachable_target(proxy, where, text)}")
        named = f" {proxy.display}" if proxy is not None else ""
        return NetworkError(
            f"{what}: the proxy{named} refused the connection to {where} ({text}): "
            "check that the proxy allows this destination"
        )
    if isinstance(exc, httpx2.TimeoutException):
        if proxy is not None and isinstance(exc, httpx2.ConnectTimeout):
            return NetworkError(
                f"{what}: timed out connecting to the proxy {proxy.display}: check proxy.address"
            )
        return NetworkError(f"{what}: timed out waiting for {where}{via}")
    if isinstance(exc, httpx2.ConnectError):
        if any(marker in text for marker in _DNS_FAILURES):
            # Through a proxy this machine resolves only the proxy's name.
            if proxy is not None:
                return NetworkError(
                    f"{what}: the proxy's host name {proxy.host} could not be resolved: "
                    "check proxy.address"
                )
            return NetworkError(
                f"{what}: the host name {host} could not be resolved: check the server's "
                "address and this machine's DNS"
            )
        if any(marker in text for marker in _TLS_FAILURES):
            return NetworkError(
                f"{what}: the TLS certificate of {host} could not be verified ({text}): "
                f"check the server's address and the trusted certificate authorities ({tls.HINT})"
            )
        if "SSL" in text or "TLS" in text:
            return NetworkError(f"{what}: the TLS handshake with {where} failed{via} ({text})")
        refused = "refused" in text.lower()
        if proxy is not None:
            return NetworkError(
                f"{what}: could not connect to the proxy {proxy.display}: "
                f"{'connection refused' if refused else text}: check proxy.address"
            )
        return NetworkError(
            f"{what}: could not connect to {where}: {'connection refused' if refused else text}"
        )
    return NetworkError(f"{what}: {exc.__class__.__name__}{via}: {text}")
