"""``GET``/``POST /login`` and ``POST /logout``: the admin password in, a signed session
cookie out (see web/security.py for what the cookie lets through)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from mailintake.observability.logging import get_logger
from mailintake.store import admin
from mailintake.web.deps import StoreDep
from mailintake.web.security import (
    SESSION_COOKIE,
    PasswordCheck,
    Sessions,
    clear_session_cookie,
    safe_next,
    session_cookie,
)
from mailintake.web.throttle import SignInThrottle

log = get_logger(__name__)
router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


def _throttle(request: Request) -> SignInThrottle:
    found = request.app.state.sign_in_throttle
    assert isinstance(found, SignInThrottle)
    return found


def _verifier(request: Request) -> PasswordCheck:
    found: PasswordCheck = request.app.state.verify_password
    return found


def _sessions(request: Request) -> Sessions:
    found = request.app.state.sessions
    assert isinstance(found, Sessions)
    return found


def _form(
    request: Request, store: StoreDep, next_path: str, error: str | None, status: int
) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        "login.html",
        {
            "next": safe_next(next_path),
            "error": error,
            "password_set": admin.admin_password_is_set(store),
        },
        status_code=status,
    )


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, store: StoreDep, next: str = "/") -> Response:
    if request.state.admin:
        return RedirectResponse(safe_next(next), status_code=303)
    return _form(request, store, next, None, 200)


@router.post("/login", response_class=HTMLResponse)
async def login(
    request: Request,
    store: StoreDep,
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    client = (request.client.host if request.client else None) or ""
    throttle = _throttle(request)
    # Counted before the password is checked: parallel attempts cannot all pass the limit.
    wait = await run_in_threadpool(throttle.attempt, client)
    if wait > 0:
        log.warning("admin.login_throttled", client=client)
        minutes = max(1, round(wait / 60))
        text = f"Too many wrong passwords from this address: try again in {minutes} minute(s)."
        answer = await run_in_threadpool(_form, request, store, next, text, 429)
        answer.headers["Retry-After"] = str(int(wait) + 1)
        return answer
    verified = await run_in_threadpool(_verifier(request), store, password)
    if not verified:
        log.warning("admin.login_refused", client=client)
        return await run_in_threadpool(_form, request, store, next, "Wrong password.", 401)
    await run_in_threadpool(throttle.succeeded, client)
    value = await run_in_threadpool(_sessions(request).issue)
    assert value is not None  # a password was verified, so one is set
    log.info("admin.login", client=client)
    response = RedirectResponse(safe_next(next), status_code=303)
    session_cookie(response, value, request)
    return response


@router.post("/logout")
def logout(request: Request) -> Response:
    """Sign out: the session ends on the server, so a copy of its cookie stops working too."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        _sessions(request).end(cookie)
    response = RedirectResponse("/login", status_code=303)
    clear_session_cookie(response, request)
    return response
