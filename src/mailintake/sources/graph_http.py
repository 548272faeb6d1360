"""How every Graph request is sent, with httpx2's own hooks: ``Bearer`` (an ``httpx2.Auth``)
puts the token on the request and, when Graph answers 401, renews it once and sends the
request again; ``Paced`` (a transport around the real one) keeps the mailbox's requests
within Graph's four at once (sources.graph_limits) and sends a request again after 429, 503
or 504, waiting what ``Retry-After`` asks or growing pauses (oauth-facts §3.6). What is left
after that — the last of those answers, or any other refusal — goes back to the caller."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator, Iterator
from typing import Any

import httpx2

from mailintake.enums import AuthState
from mailintake.errors import AuthorizationRequired
from mailintake.net.http import ProxySettings, build_client, written_by_proxy
from mailintake.oauth import graph_access
from mailintake.oauth.graph_access import Caller
from mailintake.sources.graph_answers import (
    GraphRefused,
    error_code,
    error_message,
    error_text,
    gave_up,
    retry_after,
)
from mailintake.sources.graph_limits import Limits

PREFER = 'IdType="ImmutableId"'  # on every request: ids that survive a move (§3.8)
RETRIED = (429, 503, 504)
# The statuses of the answers retried before the one returned (response.extensions).
FAILURES = "mailintake.graph_failures"
WAIT = "mailintake.graph_wait"  # the wait the last of them asked for

Policy = Callable[[], tuple[int, float]]
Flow = Generator[
    httpx2.Request, httpx2.Response, None
]  # (attempts, first pause without Retry-After)


class Bearer(httpx2.Auth):
    """The mailbox's access token on every request; a 401 renews it once per request. Threads
    that were refused the same token share one renewal."""

    def __init__(self, token: Callable[[], str], renew: Callable[[], str] | None) -> None:
        self._token = token
        self._renew = renew
        self._lock = threading.Lock()
        self.bearer = ""

    def open(self) -> None:
        self.bearer = self._token()

    def auth_flow(
        self, request: httpx2.Request
    ) -> Generator[httpx2.Request, httpx2.Response, None]:
        used = self.bearer
        request.headers["Authorization"] = f"Bearer {used}"
        response = yield request
        if response.status_code != 401 or self._renew is None:
            return
        with self._lock:
            if self.bearer == used:  # not renewed meanwhile by another thread
                self.bearer = self._renew()
        request.headers["Authorization"] = f"Bearer {self.bearer}"
        yield request


class _Held(httpx2.SyncByteStream):
    """A response body that keeps the request's slot until it is read or closed: Outlook
    counts a request until its answer is complete."""

    def __init__(self, stream: httpx2.SyncByteStream, release: Callable[[], None]) -> None:
        self._stream = stream
        self._release: Callable[[], None] | None = release

    def __iter__(self) -> Iterator[bytes]:
        yield from self._stream

    def close(self) -> None:
        try:
            self._stream.close()
        finally:
            release, self._release = self._release, None
            if release is not None:
                release()


class Paced(httpx2.BaseTransport):
    """The transport under a Graph client: request slots, and 429/503/504 sent again."""

    def __init__(self, inner: httpx2.BaseTransport, limits: Limits, policy: Policy) -> None:
        self.inner = inner
        self.limits = limits
        self.policy = policy

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        attempts, backoff = self.policy()
        failures: list[int] = []
        for attempt in range(attempts):
            self.limits.acquire()
            try:
                response = self.inner.handle_request(request)
                response.request = request
            except BaseException:
                self.limits.release()
                raise
            if response.status_code not in RETRIED or written_by_proxy(response):
                return self._held(response, failures)
            try:
                response.read()  # an error's body is small: read it to report it
            finally:
                response.close()
                self.limits.release()
            wait = retry_after(response, attempt, backoff)
            failures.append(response.status_code)
            if response.status_code == 429:
                self.limits.throttled(wait)
            if attempt + 1 == attempts:
                return httpx2.Response(
                    response.status_code,
                    headers=response.headers,
                    content=response.content,
                    extensions={**response.extensions, FAILURES: failures, WAIT: wait},
                    request=request,
                )
            time.sleep(wait)
        raise AssertionError("attempts must be at least 1")

    def _held(self, response: httpx2.Response, failures: list[int]) -> httpx2.Response:
        assert isinstance(response.stream, httpx2.SyncByteStream)
        return httpx2.Response(
            response.status_code,
            headers=response.headers,
            stream=_Held(response.stream, self.limits.release),
            extensions={**response.extensions, FAILURES: failures},
            request=response.request,
        )

    def close(self) -> None:
        self.inner.close()


def graph_client(proxy: ProxySettings | None, limits: Limits, policy: Policy) -> httpx2.Client:
    """An HTTP client for one mailbox's Graph requests (its proxy, its limits)."""
    return build_client(proxy=proxy, wrap=lambda inner: Paced(inner, limits, policy))


def prefer(headers: dict[str, Any]) -> dict[str, Any]:
    return {"Prefer": PREFER, **headers}


def refusal(name: str, caller: Caller, method: str, url: str, answer: httpx2.Response) -> Exception:
    """What an answer of 400 or more means: Graph kept throttling or failing (after every
    attempt ``Paced`` made), the token refused, access denied, or a refusal with its code
    (GraphRefused)."""
    if answer.status_code in RETRIED:
        failures = answer.extensions.get(FAILURES) or [answer.status_code]
        wait = float(answer.extensions.get(WAIT) or 0.0)
        return gave_up(name, method, url, answer, failures, wait)
    if answer.status_code == 401:
        return AuthorizationRequired(
            f"{name}: Graph refused the token: {error_text(answer)}", state=AuthState.ERROR
        )
    if answer.status_code == 403:
        return graph_access.denied(caller, error_text(answer), writing=method != "GET")
    return GraphRefused(
        f"{name}: Graph {method} {url.split('?')[0]}: HTTP "
        f"{answer.status_code} {error_text(answer)}",
        answer.status_code,
        error_code(answer),
        error_message(answer),
    )
