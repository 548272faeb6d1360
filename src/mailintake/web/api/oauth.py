"""The Authorize action over HTTP: ``POST /mailboxes/{name}/authorize`` and the redirect
callback that the login page returns to when the redirect URI points at this server."""

from __future__ import annotations

import html
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict

from mailintake.config.matrix import Grant
from mailintake.enums import AuthState
from mailintake.errors import AuthError, ConfigError, MailintakeError
from mailintake.oauth import device as device_grant
from mailintake.oauth.authorize import callback_params, complete_code, start_code
from mailintake.oauth.grants import CodeRequest
from mailintake.oauth.tokens import MailboxAuth, TokenManager, load_auth
from mailintake.observability.logging import get_logger
from mailintake.web.deps import StoreDep, services

log = get_logger(__name__)
router = APIRouter(tags=["authorization"])
CALLBACK = "/api/v1/oauth/callback"
PENDING_LIFETIME = 900.0


@dataclass
class Pending:
    mailbox: str
    request: CodeRequest
    created: float = field(default_factory=time.monotonic)


@dataclass
class DeviceState:
    user_code: str
    verification_uri: str
    message: str
    outcome: dict[str, Any] | None = None


@dataclass
class Flows:
    """Sign-ins under way in this server process (a popup returns to the process that
    opened it)."""

    codes: dict[str, Pending] = field(default_factory=dict)
    devices: dict[str, DeviceState] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, pending: Pending) -> None:
        with self.lock:
            now = time.monotonic()
            for key in [k for k, p in self.codes.items() if now - p.created > PENDING_LIFETIME]:
                del self.codes[key]
            self.codes[pending.request.state] = pending

    def take(self, state: str, mailbox: str | None = None) -> Pending | None:
        """The sign-in started with ``state``, removed (it completes once). With ``mailbox``,
        only that mailbox's: another's is left as it was, so a request naming the wrong
        mailbox cannot use up a sign-in under way."""
        with self.lock:
            pending = self.codes.get(state)
            if pending is None or (mailbox is not None and pending.mailbox != mailbox):
                return None
            return self.codes.pop(state)


class AuthorizeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    device_code: bool = False


class CompleteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str


def _flows(request: Request) -> Flows:
    found = request.app.state.flows  # built by create_app
    assert isinstance(found, Flows)
    return found


def _manager(request: Request) -> TokenManager:
    return services(request).token_manager()


def _failure(name: str, exc: AuthError) -> dict[str, Any]:
    return {
        "mailbox": name,
        "authorization_state": exc.state,
        "message": str(exc),
        "code": exc.code,
    }


@router.post("/mailboxes/{name}/authorize", summary="Authorize: obtain and store the tokens")
def authorize(
    request: Request, store: StoreDep, name: str, body: AuthorizeBody | None = None
) -> dict[str, Any]:
    """Client credentials and password: tokens now (``authorization_state`` authorized, or the
    state and the fix). Authorization code: the ``authorization_url`` to open (a popup);
    the login page returns to the callback when the redirect URI points at this server,
    otherwise post the final URL to ``…/authorize/complete``. Device code: the code to enter."""
    manager = _manager(request)
    with store.read() as repo:
        auth = load_auth(repo, name)
    if (body and body.device_code) or auth.grant is Grant.DEVICE_CODE:
        return _start_device(manager, auth, _flows(request))
    if auth.grant is Grant.AUTHORIZATION_CODE:
        code_request = start_code(auth)
        _flows(request).add(Pending(name, code_request))
        return {
            "mailbox": name,
            "authorization_state": "pending",
            "authorization_url": code_request.url,
            "redirect_uri": code_request.redirect_uri,
            "callback": code_request.redirect_uri.split("?")[0].endswith(CALLBACK),
        }
    try:
        return manager.authorize_now(name).as_dict()
    except AuthError as exc:
        return _failure(name, exc)


@router.post(
    "/mailboxes/{name}/authorize/complete",
    summary="Finish an authorization code sign-in with the URL the browser ended on",
)
def complete(request: Request, name: str, body: CompleteBody) -> dict[str, Any]:
    params = callback_params(body.url)
    pending = _flows(request).take(params.get("state", ""), name)
    if pending is None:
        raise ConfigError(
            ["url: this sign-in was not started here or has expired; authorize again"]
        )
    return _complete(request, pending, params)


def _complete(request: Request, pending: Pending, params: dict[str, str]) -> dict[str, Any]:
    manager = _manager(request)
    with manager.store.read() as repo:
        auth = load_auth(repo, pending.mailbox)
    try:
        return complete_code(manager, auth, pending.request, params).as_dict()
    except AuthError as exc:
        return _failure(pending.mailbox, exc)


@router.get(
    "/oauth/callback",
    summary="Where the login page redirects (authorization code)",
    response_class=HTMLResponse,
)
def callback(request: Request) -> HTMLResponse:
    params = dict(request.query_params)
    pending = _flows(request).take(params.get("state", ""))
    if pending is None:
        return _page(
            "Sign-in not recognised",
            "This sign-in was not started here or has expired. Click Authorize again.",
            status=400,
        )
    outcome = _complete(request, pending, params)
    if outcome["authorization_state"] == AuthState.AUTHORIZED:
        return _page("Login successful", str(outcome["message"]))
    return _page("Sign-in failed", str(outcome["message"]), status=400)


def _page(title: str, text: str, status: int = 200) -> HTMLResponse:
    # callback.js tells the page that opened this popup, then closes it (no inline script).
    outcome = "authorized" if status == 200 else "failed"
    body = (
        "<!doctype html><html><head><meta charset='utf-8'><title>mailintake: "
        f"{html.escape(title)}</title><link rel='stylesheet' href='/static/app.css'>"
        "<script src='/static/callback.js' defer></script></head>"
        f"<body data-outcome='{outcome}' data-message='{html.escape(text, quote=True)}'>"
        f"<h1 id='outcome'>{html.escape(title)}</h1>"
        f"<p>{html.escape(text)}</p><p>You can close this window.</p></body></html>"
    )
    return HTMLResponse(body, status_code=status)


def _start_device(manager: TokenManager, auth: MailboxAuth, flows: Flows) -> dict[str, Any]:
    if not auth.device_authorization_endpoint:
        raise ConfigError(
            [f"mailboxes[{auth.mailbox}].oauth.device_authorization_endpoint: not set"]
        )
    with manager.endpoint(auth, "authorize") as endpoint:
        device = device_grant.start_device(
            endpoint, auth.device_authorization_endpoint, auth.request_scopes
        )
    state = DeviceState(device.user_code, device.verification_uri, device.message)
    with flows.lock:
        flows.devices[auth.mailbox] = state

    def poll() -> None:
        try:
            with manager.endpoint(auth, "authorize") as endpoint:
                response = device_grant.poll_device(endpoint, device)
            state.outcome = manager.store_authorization(auth.mailbox, response).as_dict()
        except AuthError as exc:
            with manager.store.begin() as repo:
                repo.set_auth_state(auth.mailbox, exc.state, str(exc))
            state.outcome = _failure(auth.mailbox, exc)
        except MailintakeError as exc:
            state.outcome = {
                "mailbox": auth.mailbox,
                "authorization_state": AuthState.ERROR,
                "message": str(exc),
                "code": None,
            }

    threading.Thread(target=poll, name=f"device-{auth.mailbox}", daemon=True).start()
    return {
        "mailbox": auth.mailbox,
        "authorization_state": "pending",
        "user_code": device.user_code,
        "verification_uri": device.verification_uri,
        "message": device.message,
    }


@router.get("/mailboxes/{name}/authorization", summary="Authorization state and sign-in under way")
def authorization(request: Request, store: StoreDep, name: str) -> dict[str, Any]:
    # The device sign-in's outcome first: it is set only after its tokens are committed, so
    # the state read next is at least as new as the outcome shown with it.
    device = _flows(request).devices.get(name)
    outcome = device.outcome if device is not None else None
    with store.read() as repo:
        record = repo.get_mailbox(name)
        grant = repo.grant(name)
    return {
        "mailbox": name,
        "authorization_state": record.auth_state,
        "detail": record.auth_detail,
        "account": grant.account if grant else None,
        "authorized_at": grant.authorized_at.isoformat() if grant else None,
        "refresh_token_obtained_at": (
            grant.refresh_obtained_at.isoformat() if grant and grant.refresh_obtained_at else None
        ),
        "device": None
        if device is None
        else {
            "user_code": device.user_code,
            "verification_uri": device.verification_uri,
            "outcome": outcome,
        },
    }
