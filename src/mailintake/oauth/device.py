"""The device authorization grant (RFC 8628): a code the user enters on another device, and
the token endpoint polled until they have signed in, declined, or the code expired."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx2

from mailintake.errors import AuthorizationPending, NetworkError
from mailintake.net.http import proxy_of, translate
from mailintake.oauth import diagnose
from mailintake.oauth.grants import DEVICE_GRANT, Endpoint, TokenResponse, post_token


@dataclass(frozen=True)
class DeviceCode:
    device_code: str = field(repr=False)
    user_code: str
    verification_uri: str
    expires_at: float
    interval: float
    message: str
    scopes: tuple[str, ...]


_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


def _verification_uri(mailbox: str, value: object) -> str:
    """The token server's ``verification_uri`` when it is an address to open: https, or http
    on a loopback host (a local stand-in). Anything else (``javascript:``, ``data:``, a plain
    http address) is refused: it would be shown to the user as a link."""
    uri = str(value)
    try:
        parts = urlsplit(uri)
        host = parts.hostname or ""
    except ValueError:
        parts, host = urlsplit(""), ""
    if (parts.scheme == "https" and host) or (parts.scheme == "http" and host in _LOOPBACK):
        return uri
    shown = "".join(c if c.isprintable() else "?" for c in uri[:200])
    raise NetworkError(
        f"{mailbox}: the device authorization endpoint answered verification_uri "
        f"'{shown}', which is not an https:// address; refusing to show it to open "
        "(check the server's device_authorization_endpoint)"
    )


def start_device(endpoint: Endpoint, device_endpoint: str, scopes: tuple[str, ...]) -> DeviceCode:
    data = {**endpoint.client.params(device_endpoint), "scope": " ".join(scopes)}
    data.pop("client_assertion", None)
    data.pop("client_assertion_type", None)
    try:
        answer = endpoint.http.post(device_endpoint, data=data)
    except httpx2.HTTPError as exc:
        raise translate(
            exc, f"{endpoint.mailbox}: device code request", proxy_of(endpoint.http)
        ) from exc
    if answer.status_code != 200:
        error = diagnose.parse_token_error(answer.status_code, answer.content, answer.headers)
        raise diagnose.to_exception(diagnose.diagnose(error, endpoint.context), endpoint.mailbox)
    try:
        body = answer.json()
        uri = body.get("verification_uri") or body.get("verification_url")  # Google: _url
        uri = _verification_uri(endpoint.mailbox, uri)
        return DeviceCode(
            device_code=str(body["device_code"]),
            user_code=str(body["user_code"]),
            verification_uri=str(uri),
            expires_at=time.time() + float(body.get("expires_in", 900)),
            interval=float(body.get("interval", 5)),
            message=str(
                body.get("message") or f"Open {uri} and enter the code {body['user_code']}"
            ),
            scopes=scopes,
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        raise NetworkError(
            f"{endpoint.mailbox}: the device authorization endpoint gave an unusable answer"
        ) from None


def poll_device(
    endpoint: Endpoint,
    device: DeviceCode,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
) -> TokenResponse:
    """Poll until the user signs in, declines, or the code expires (RFC 8628 §3.4, with
    Entra's polling errors)."""
    interval = device.interval
    params = {"grant_type": DEVICE_GRANT, "device_code": device.device_code}
    while True:
        try:
            return post_token(endpoint, params, device.scopes)
        except AuthorizationPending as pending:
            if pending.slow_down:
                interval += 5
        if clock() + interval > device.expires_at:
            raise diagnose.to_exception(
                diagnose.diagnose(diagnose.ProviderError(error="expired_token"), endpoint.context),
                endpoint.mailbox,
            )
        sleep(interval)
