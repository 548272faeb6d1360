"""Who may use the web admin and the REST API, and the headers every answer carries.

``install(app, services)`` (called by ``create_app``) adds the sign-in pages (web/login.py)
and ``SecurityMiddleware``, which, for every HTTP request:

- adds the security headers (``SECURITY_HEADERS``: a Content-Security-Policy without inline
  script or style and with ``frame-ancestors 'none'``, nosniff, DENY, same-origin referrer);
- lets through without sign-in only ``PUBLIC_PATHS`` and ``/static/…``: the login page, the
  OAuth redirect callback (protected by the OAuth ``state``), ``/metrics`` (for
  Prometheus), ``/healthz`` (for liveness probes: it says "ok" and the version) and
  Microsoft Graph's notifications (checked by their clientState: web/notifications.py);
- otherwise accepts either ``Authorization: Bearer <API token>`` (``mailintake admin token
  create NAME``) or the signed session cookie ``mailintake_session`` set by ``POST /login``,
  whose session is also kept in the database (``store.admin``: idle time, a longest life,
  ended everywhere by ``POST /logout``);
- refuses a request authenticated by the cookie whose method changes something (POST, PUT,
  PATCH, DELETE) unless the browser says it comes from this site: ``Sec-Fetch-Site`` is
  ``same-origin`` or ``none``, or, without it, ``Origin`` is this server's own origin.
  ``POST /login`` is checked the same way. Bearer tokens are not: a browser never sends them
  by itself, so another site cannot make it use one;
- answers an unauthenticated request with a redirect to ``/login?next=…`` (a GET that prefers
  HTML) or ``401 {"error": "authentication required"}``; an htmx request also gets
  ``HX-Redirect`` so the page moves to the login form.

Handlers read who is calling from ``request.state``: ``admin`` is True for a signed-in
session or a valid API token (False on the public paths when nobody is signed in), and
``api_token`` is the token's name (None for a session).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urlsplit

from fastapi import FastAPI
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mailintake.engine.graph_push import LIFECYCLE_PATH, NOTIFY_PATH
from mailintake.observability.logging import get_logger
from mailintake.store import admin
from mailintake.store.repo import Store
from mailintake.web.csrf import same_origin
from mailintake.web.deps import Services
from mailintake.web.throttle import SignInThrottle

log = get_logger(__name__)
PasswordCheck = Callable[[Store, str], bool]  # whether a password is the admin password
SESSION_COOKIE = "mailintake_session"
SESSION_IDLE = 12 * 3600  # seconds without a request after which a session ends
SESSION_LIFETIME = 24 * 3600  # seconds after sign-in after which it ends, however used
SESSION_RENEW = 300  # a session's cookie is signed again at most this often
LOGIN = "/login"
# Graph's notifications (web/notifications.py) check their own clientState, size and rate.
GRAPH_NOTIFICATIONS = frozenset({NOTIFY_PATH, LIFECYCLE_PATH})
PUBLIC_PATHS = frozenset(
    {LOGIN, "/api/v1/oauth/callback", "/metrics", "/healthz", *GRAPH_NOTIFICATIONS}
)
PUBLIC_PREFIXES = ("/static/",)
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)
# No Cross-Origin-Opener-Policy: the Authorize popup keeps its opener across the identity
# provider's pages.
SECURITY_HEADERS = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
)


class Sessions:
    """Signs and checks session cookies with the key kept in the database."""

    def __init__(self, services: Services) -> None:
        self._services = services
        self._serializer: URLSafeTimedSerializer | None = None

    @property
    def store(self) -> Store:
        store = self._services.store
        if store is None:  # pragma: no cover - only before startup
            raise RuntimeError("the application has not started")
        return store

    def _signer(self) -> URLSafeTimedSerializer:
        if self._serializer is None:
            key = admin.session_key(self.store)
            self._serializer = URLSafeTimedSerializer(key, salt="mailintake.session")
        return self._serializer

    def issue(self) -> str | None:
        """A new session's cookie value, or None when no admin password is set."""
        tag = admin.password_tag(self.store)
        if tag is None:
            return None
        session = admin.start_session(self.store, timedelta(seconds=SESSION_LIFETIME))
        return self._signer().dumps({"p": tag, "s": session})

    def renewed(self, session: str) -> str | None:
        """The cookie value of ``session`` signed again (its idle time starts anew)."""
        tag = admin.password_tag(self.store)
        return None if tag is None else self._signer().dumps({"p": tag, "s": session})

    def check(self, value: str) -> tuple[str | None, bool]:
        """(the session, or None when the cookie ``value`` is not a valid one; whether its
        cookie is due to be signed again)."""
        try:
            data, signed_at = self._signer().loads(
                value, max_age=SESSION_IDLE, return_timestamp=True
            )
        except BadSignature:
            return None, False
        tag = admin.password_tag(self.store)
        if tag is None or not isinstance(data, dict) or data.get("p") != tag:
            return None, False
        session = data.get("s")
        if not isinstance(session, str) or not admin.session_active(
            self.store,
            session,
            timedelta(seconds=SESSION_IDLE),
            timedelta(seconds=SESSION_LIFETIME),
        ):
            return None, False
        age = (datetime.now(UTC) - signed_at).total_seconds()
        return session, age > SESSION_RENEW

    def end(self, value: str) -> None:
        """Sign out the session of the cookie ``value``, if it is one of ours."""
        try:
            data = self._signer().loads(value)
        except BadSignature:
            return
        session = data.get("s") if isinstance(data, dict) else None
        if isinstance(session, str):
            admin.end_session(self.store, session)


def safe_next(value: str | None) -> str:
    """``value`` when it is a path on this server, else ``/`` (no open redirect)."""
    if (
        not value
        or not value.startswith("/")
        or value.startswith("//")
        or "\\" in value
        or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value)
        or urlsplit(value).netloc
    ):
        return "/"
    return value


def prefers_html(request: Request) -> bool:
    """Whether the client asks for text/html at least as much as for JSON."""
    quality: dict[str, float] = {}
    for item in request.headers.get("accept", "").split(","):
        media, *params = (p.strip() for p in item.split(";"))
        q = 1.0
        for param in params:
            name, _, number = param.partition("=")
            if name.strip() == "q":
                try:
                    q = float(number)
                except ValueError:
                    q = 0.0
        quality[media.lower()] = max(q, quality.get(media.lower(), 0.0))
    html = quality.get("text/html", 0.0)
    return html > 0 and html >= quality.get("application/json", 0.0)


def session_cookie(response: Response, value: str, request: Request) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=SESSION_IDLE,
        path="/",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )


def clear_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(
        SESSION_COOKIE,
        path="/",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )


def _refusal(status: int, error: str, detail: str, headers: dict[str, str]) -> Response:
    body = json.dumps({"error": error, "detail": detail}).encode()
    return Response(body, status_code=status, media_type="application/json", headers=headers)


@dataclass(frozen=True)
class Caller:
    """Who a request comes from, as far as the middleware could tell."""

    admin: bool
    api_token: str | None = None
    session: str | None = None  # signed in with this session's cookie
    renew: bool = False
    bad_token: bool = False


class SecurityMiddleware:
    """Security headers, authentication and cross-site refusal (see the module docstring)."""

    def __init__(self, app: ASGIApp, sessions: Sessions) -> None:
        self.app = app
        self.sessions = sessions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        path = request.url.path
        public = path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)
        extra: list[tuple[str, str]] = []

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS:
                    headers[name] = value
                for name, value in extra:
                    headers.append(name, value)
            await send(message)

        state = scope.setdefault("state", {})
        state["admin"], state["api_token"] = False, None
        if public and path != LOGIN:
            await self.app(scope, receive, send_secured)
            return
        caller = await run_in_threadpool(self._identify, request)
        if path == LOGIN:
            if request.method in UNSAFE_METHODS and not same_origin(request):
                await _cross_site(request)(scope, receive, send_secured)
                return
            state["admin"] = caller.admin and caller.session is not None
            await self.app(scope, receive, send_secured)
            return
        if not caller.admin:
            await _unauthenticated(request, caller)(scope, receive, send_secured)
            return
        if (
            caller.session is not None
            and request.method in UNSAFE_METHODS
            and not same_origin(request)
        ):
            await _cross_site(request)(scope, receive, send_secured)
            return
        state["admin"], state["api_token"] = True, caller.api_token
        if caller.renew and caller.session is not None:
            renewed = await run_in_threadpool(self.sessions.renewed, caller.session)
            if renewed is not None:
                carrier = Response()
                session_cookie(carrier, renewed, request)
                extra.extend(
                    (k.decode("latin-1"), v.decode("latin-1"))
                    for k, v in carrier.raw_headers
                    if k == b"set-cookie"
                )
        await self.app(scope, receive, send_secured)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The same sign-in for a WebSocket; one opened by another site is closed."""
        connection = HTTPConnection(scope)
        caller = await run_in_threadpool(self._identify, connection)
        if not caller.admin or (caller.session is not None and not same_origin(connection)):
            await send({"type": "websocket.close", "code": 1008})
            return
        await self.app(scope, receive, send)

    def _identify(self, request: HTTPConnection) -> Caller:
        authorization = request.headers.get("authorization")
        if authorization is not None:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                return Caller(admin=False, bad_token=True)
            name = admin.check_api_token(self.sessions.store, token.strip())
            if name is None:
                return Caller(admin=False, bad_token=True)
            return Caller(admin=True, api_token=name)
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            session, renew = self.sessions.check(cookie)
            if session is not None:
                return Caller(admin=True, session=session, renew=renew)
        return Caller(admin=False)


def _cross_site(request: Request) -> Response:
    log.warning(
        "web.cross_site_refused",
        path=request.url.path,
        origin=request.headers.get("origin"),
        sec_fetch_site=request.headers.get("sec-fetch-site"),
    )
    return _refusal(
        403,
        "cross-site request refused",
        "a change sent from another site (Sec-Fetch-Site or Origin) is refused; API clients "
        "authenticate with Authorization: Bearer <token>",
        {},
    )


def _unauthenticated(request: Request, caller: Caller) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.method in ("GET", "HEAD") and prefers_html(request) and not caller.bad_token:
        return Response(status_code=303, headers={"Location": f"{LOGIN}?next={quote(target)}"})
    headers = {"WWW-Authenticate": 'Bearer realm="mailintake"'}
    if caller.bad_token:
        headers["WWW-Authenticate"] += ', error="invalid_token"'
    if request.headers.get("hx-request") == "true":
        current = urlsplit(request.headers.get("hx-current-url", ""))
        page = safe_next(current.path + (f"?{current.query}" if current.query else ""))
        headers["HX-Redirect"] = f"{LOGIN}?next={quote(page)}"
    return _refusal(
        401,
        "authentication required",
        "sign in at /login, or send an API token: Authorization: Bearer <token>",
        headers,
    )


def install(app: FastAPI, services: Services, verify_password: PasswordCheck | None = None) -> None:
    """Add the sign-in pages and the middleware to ``app``. ``verify_password`` checks the
    admin password (tests pass one in to count the checks)."""
    from mailintake.web import login

    sessions = Sessions(services)
    app.state.sessions = sessions
    app.state.verify_password = verify_password or admin.verify_admin_password
    app.state.sign_in_throttle = SignInThrottle(lambda: sessions.store)
    app.include_router(login.router)
    app.add_middleware(SecurityMiddleware, sessions=sessions)
