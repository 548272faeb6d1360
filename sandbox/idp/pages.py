"""The browser side: the sign-in page, the consent page, the device-code pages. Plain HTML
forms, no script, so tests drive them with an HTTP client that keeps cookies:

- ``<form id="login">``: inputs ``username`` and ``password``. A failed sign-in shows the
  page again with the AADSTS code in ``<p id="error">``.
- ``<form id="consent">``: ``<button name="consent" value="accept">`` or ``value="decline"``.
- ``<form id="devicelogin">`` at ``/devicelogin``: input ``user_code``; then login, then a
  ``consent`` form that is always shown for the device flow ("Are you trying to sign in to
  …?", as Entra asks), whose decline makes the polling client get ``authorization_declined``;
  then a page with ``<p id="done">You have signed in …``.

Each form's ``action`` carries the original request in its query; the signed-in user is
kept in the ``sandbox_session`` cookie.
"""

from __future__ import annotations

import html
import secrets
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2 import OAuth2Error
from flask import Response, make_response, redirect, request
from werkzeug.wrappers import Response as BaseResponse

from sandbox.idp.errors import EntraError, as_entra
from sandbox.idp.model import App, User

if TYPE_CHECKING:
    from sandbox.idp.server import IdentityProvider

SESSION_COOKIE = "sandbox_session"


def page(title: str, content: str, status: int = 200) -> Response:
    body = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title></head><body><h1>{html.escape(title)}</h1>"
        f"{content}</body></html>"
    )
    response = make_response(body, status)
    response.headers["Content-Type"] = "text/html; charset=utf-8"
    return response


def error_page(code: int, text: str) -> Response:
    """Entra shows an error page, not a redirect, when it cannot trust the redirect URI."""
    return page("Sign in", f"<p id='error'>AADSTS{code}: {html.escape(text)}</p>", 400)


def _session_user(provider: IdentityProvider) -> User | None:
    username = provider.sessions.get(request.cookies.get(SESSION_COOKIE, ""))
    return provider.user(username) if username else None


def sign_in(provider: IdentityProvider, target: str) -> BaseResponse | User:
    """The login form, or the signed-in user. Interactive sign-in satisfies MFA."""
    error = ""
    if request.method == "POST" and "password" in request.form:
        try:
            found = provider.check_user(
                request.form.get("username", ""),
                request.form.get("password", ""),
                interactive=True,
            )
        except EntraError as exc:
            error = f"AADSTS{exc.code}: {exc.text}"
        else:
            session = secrets.token_urlsafe(24)
            provider.sessions[session] = found.username
            response = redirect(target, code=302)
            response.set_cookie(SESSION_COOKIE, session, httponly=True)
            return response
    user = _session_user(provider)
    if user is not None and not error:
        return user
    hint = request.args.get("login_hint", request.form.get("username", ""))
    return page(
        "Sign in",
        (
            (f"<p id='error' role='alert'>{html.escape(error)}</p>" if error else "")
            + f"<form id='login' method='post' action='{html.escape(target)}'>"
            f"<label>Email <input name='username' value='{html.escape(hint)}'></label>"
            "<label>Password <input name='password' type='password' value=''></label>"
            "<button type='submit'>Sign in</button></form>"
        ),
    )


def _consent_form(title: str, text: str, target: str) -> Response:
    return page(
        title,
        (
            f"<p>{html.escape(text)}</p>"
            f"<form id='consent' method='post' action='{html.escape(target)}'>"
            "<button name='consent' value='accept'>Accept</button>"
            "<button name='consent' value='decline'>Cancel</button></form>"
        ),
    )


def consent(user: User, app: App, target: str, scope: str) -> BaseResponse | bool:
    """The consent page; True once the user accepted (remembered), False if declined."""
    if app.client_id in user.consented_apps:
        return True
    if request.method == "POST" and request.form.get("consent") == "accept":
        user.consented_apps.add(app.client_id)
        return True
    if request.method == "POST" and request.form.get("consent") == "decline":
        return False
    return _consent_form("Permissions requested", f"{app.name} wants to: {scope}", target)


def _redirect_error(redirect_uri: str, code: int, text: str) -> BaseResponse:
    query = urlencode(
        {
            "error": "access_denied",
            "error_description": f"AADSTS{code}: {text}",
            "state": request.args.get("state", ""),
        }
    )
    return redirect(f"{redirect_uri}{'&' if '?' in redirect_uri else '?'}{query}", 302)


def authorize(provider: IdentityProvider, server: AuthorizationServer) -> Any:
    """GET/POST /{tenant}/oauth2/v2.0/authorize: checks, login, consent, then Authlib's
    authorization-code response (302 to the redirect URI with code and state)."""
    client_id = request.args.get("client_id", "")
    app = provider.apps.get(client_id)
    if app is None:
        return error_page(
            700016,
            f"Application with identifier '{client_id}' was not found in the directory "
            f"'{provider.domain}'.",
        )
    redirect_uri = request.args.get("redirect_uri", "")
    if app.platform_of(redirect_uri) is None:
        return error_page(
            50011,
            f"The redirect URI '{redirect_uri}' specified in the request does not match the "
            f"redirect URIs configured for the application '{client_id}'.",
        )
    target = request.full_path
    signed_in = sign_in(provider, target)
    if isinstance(signed_in, BaseResponse):
        return signed_in
    accepted = consent(signed_in, app, target, request.args.get("scope", ""))
    if isinstance(accepted, BaseResponse):
        return accepted
    if not accepted:
        return _redirect_error(
            redirect_uri,
            65004,
            "User declined to consent to access the app.",
        )
    try:
        grant = server.get_consent_grant(end_user=signed_in)
    except OAuth2Error as exc:
        status, body, _headers = as_entra(exc)()
        return provider.json_response(body, status)
    return server.create_authorization_response(grant=grant, grant_user=signed_in)


def _code_form(error: str = "") -> Response:
    return page(
        "Enter code",
        (f"<p id='error'>{html.escape(error)}</p>" if error else "")
        + "<form id='devicelogin' method='post' action='/devicelogin'>"
        "<label>Code <input name='user_code' value=''></label>"
        "<button type='submit'>Next</button></form>",
        400 if error else 200,
    )


def devicelogin(provider: IdentityProvider) -> Any:
    """GET/POST /devicelogin: code, login, confirmation (consent), done."""
    user_code = request.values.get("user_code", "").strip()
    if not user_code:
        return _code_form()
    device = provider.device_by_user_code(user_code)
    if device is None or device.is_expired() or device.approved is not None:
        return _code_form("AADSTS70018: That code didn't work. Check the code and try again.")
    target = f"/devicelogin?{urlencode({'user_code': device.user_code})}"
    signed_in = sign_in(provider, target)
    if isinstance(signed_in, BaseResponse):
        return signed_in
    app = provider.apps[device.client_id]
    answer = request.form.get("consent") if request.method == "POST" else None
    if answer not in ("accept", "decline"):
        text = f"Are you trying to sign in to {app.name}? Requested: {device.scope}"
        return _consent_form("Are you trying to sign in?", text, target)
    if answer == "accept":
        signed_in.consented_apps.add(app.client_id)
    device.username = signed_in.username
    device.approved = answer == "accept"
    if not device.approved:
        return page("Sign-in declined", "<p id='done'>You declined to sign in.</p>")
    return page(
        "You have signed in",
        f"<p id='done'>You have signed in to the {html.escape(app.name)} application on your "
        "device. You may now close this window.</p>",
    )
