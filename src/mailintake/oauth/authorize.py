"""The Authorize action: run the mailbox's grant and store the tokens, or say exactly why not.

Client credentials and password grants request tokens with the stored values. The
authorization code grant sends a person to the login page and receives the redirect: on a
loopback listener for ``http://localhost`` / ``http://127.0.0.1`` redirect URIs (any port,
RFC 8252 §7.3), or from the final URL pasted back (any other redirect URI), or on the
running ``mailintake serve`` (its callback route). The device code grant shows a code to
enter on any device and polls until the person has signed in.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from mailintake.config.matrix import Grant
from mailintake.enums import AuthState
from mailintake.errors import AuthError, ConfigError
from mailintake.oauth import device as device_grant
from mailintake.oauth import diagnose, grants
from mailintake.oauth.grants import CodeRequest
from mailintake.oauth.loopback import LoopbackListener
from mailintake.oauth.tokens import Authorized, MailboxAuth, TokenManager, load_auth

LOOPBACK_HOSTS = ("localhost", "127.0.0.1")
# Google returns a refresh token only with access_type=offline, and again after the first
# consent only with prompt=consent (oauth-facts §4.4).
PROVIDER_PARAMS = {"GOOGLE": {"access_type": "offline", "prompt": "consent"}}


def is_loopback(redirect_uri: str) -> bool:
    parts = urlsplit(redirect_uri)
    return parts.scheme == "http" and (parts.hostname or "") in LOOPBACK_HOSTS


def callback_params(url: str) -> dict[str, str]:
    """The query (or fragment) parameters of the URL the login page redirected to."""
    parts = urlsplit(url.strip())
    params = dict(parse_qsl(parts.query)) or dict(parse_qsl(parts.fragment))
    return params


def complete_code(
    manager: TokenManager, auth: MailboxAuth, request: CodeRequest, params: Mapping[str, str]
) -> Authorized:
    """Check the redirect's ``state``, turn an error into its diagnosis, redeem the code."""
    refused = diagnose.parse_redirect_error(params)
    if refused is not None:
        error = diagnose.to_exception(
            diagnose.diagnose(refused, auth.context("authorize")), auth.mailbox
        )
        if isinstance(error, AuthError):
            _record(manager, auth.mailbox, error.state, str(error))
        raise error
    if params.get("state") != request.state:
        raise AuthError(
            f"{auth.mailbox}: the sign-in answer does not belong to this attempt (its state "
            "differs); start again with mailintake authorize",
            state=AuthState.NOT_AUTHORIZED,
        )
    code = params.get("code")
    if not code:
        raise AuthError(
            f"{auth.mailbox}: the redirect carries no authorization code; paste the whole URL "
            "the browser ended on",
            state=AuthState.NOT_AUTHORIZED,
        )
    try:
        with manager.endpoint(auth, "authorize") as endpoint:
            response = grants.redeem_code(endpoint, request, code)
    except AuthError as exc:
        _record(manager, auth.mailbox, exc.state, str(exc))
        raise
    return manager.store_authorization(auth.mailbox, response)


def _record(manager: TokenManager, name: str, state: str, detail: str) -> None:
    with manager.store.begin() as repo:
        repo.set_auth_state(name, state, detail)


def start_code(auth: MailboxAuth, redirect_uri: str | None = None) -> CodeRequest:
    if not auth.authorization_endpoint or not (redirect_uri or auth.redirect_uri):
        raise ConfigError(
            [f"mailboxes[{auth.mailbox}].oauth: authorization_endpoint and redirect_uri needed"]
        )
    return grants.code_request(
        auth.authorization_endpoint,
        auth.client_id,
        redirect_uri or auth.redirect_uri or "",
        auth.request_scopes,
        auth.username,
        PROVIDER_PARAMS.get(auth.server),
    )


@dataclass
class Interaction:
    """How the Authorize action talks to the person: ``show`` prints a line, ``open_url``
    opens the login page (a browser, or nothing with --no-browser), ``ask`` reads a line."""

    show: Callable[[str], None]
    open_url: Callable[[str], object] | None
    ask: Callable[[str], str]
    timeout: float = 300.0


def authorize(
    manager: TokenManager,
    name: str,
    interaction: Interaction,
    *,
    device_code: bool = False,
) -> Authorized:
    """The Authorize action for one mailbox."""
    with manager.store.read() as repo:
        auth = load_auth(repo, name)
    if device_code or auth.grant is Grant.DEVICE_CODE:
        return _authorize_device(manager, auth, interaction)
    if auth.grant is Grant.AUTHORIZATION_CODE:
        return _authorize_code(manager, auth, interaction)
    return manager.authorize_now(name)


def _authorize_code(
    manager: TokenManager, auth: MailboxAuth, interaction: Interaction
) -> Authorized:
    assert auth.redirect_uri is not None
    if is_loopback(auth.redirect_uri):
        listener = LoopbackListener(auth.redirect_uri)
        try:
            request = start_code(auth, listener.redirect_uri)
            interaction.show(f"Sign in as {auth.username} at:\n{request.url}")
            if interaction.open_url is not None:
                interaction.open_url(request.url)
            interaction.show(f"Waiting for the sign-in on {listener.redirect_uri} …")
            params = listener.wait(interaction.timeout)
        finally:
            listener.close()
        if params is None:
            raise AuthError(
                f"{auth.mailbox}: no sign-in arrived within {int(interaction.timeout)} s; run "
                f"mailintake authorize {auth.mailbox} again",
                state=AuthState.NOT_AUTHORIZED,
            )
    else:
        request = start_code(auth)
        interaction.show(f"Sign in as {auth.username} at:\n{request.url}")
        if interaction.open_url is not None:
            interaction.open_url(request.url)
        interaction.show(
            f"After signing in, the browser ends on {auth.redirect_uri}…; copy that whole URL "
            "from the address bar and paste it here."
        )
        params = callback_params(interaction.ask("Final URL"))
    return complete_code(manager, auth, request, params)


def _authorize_device(
    manager: TokenManager, auth: MailboxAuth, interaction: Interaction
) -> Authorized:
    if not auth.device_authorization_endpoint:
        raise ConfigError(
            [
                f"mailboxes[{auth.mailbox}].oauth.device_authorization_endpoint: the server "
                f"{auth.server} has none; use another grant or set it"
            ]
        )
    try:
        with manager.endpoint(auth, "authorize") as endpoint:
            device = device_grant.start_device(
                endpoint, auth.device_authorization_endpoint, auth.request_scopes
            )
            interaction.show(device.message)
            if interaction.open_url is not None:
                interaction.open_url(device.verification_uri)
            response = device_grant.poll_device(endpoint, device, sleep=time.sleep)
    except AuthError as exc:
        _record(manager, auth.mailbox, exc.state, str(exc))
        raise
    return manager.store_authorization(auth.mailbox, response)
