"""The token lifecycle of a mailbox: a valid access token on demand, renewed ahead of expiry,
at most one renewal per mailbox at a time across threads and processes, the newest refresh
token always stored, and every refusal recorded as the mailbox's authorization state.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2

from mailintake.config import resolve
from mailintake.config.matrix import USER_GRANTS, Grant
from mailintake.enums import AuthState
from mailintake.errors import AuthError, AuthorizationRequired, ConfigError, TransientError
from mailintake.net.http import ProxySettings, build_client
from mailintake.oauth import diagnose, grants
from mailintake.oauth.assertion import client_assertion, load_certificate
from mailintake.oauth.diagnose import UnconfirmedRefusal
from mailintake.oauth.grants import ClientCredentials, Endpoint, TokenResponse
from mailintake.oauth.refusals import RefusalPolicy
from mailintake.observability.logging import get_logger
from mailintake.store.repo import Repo, Store
from mailintake.store.tokens import (
    AccessToken,
    forget,
    forget_access,
    record_refusal,
    write_access,
    write_grant,
)

log = get_logger(__name__)

HttpFactory = Callable[[ProxySettings | None], httpx2.Client]
# OpenID scopes added to user sign-ins so the answer names the account that signed in.
IDENTITY_SCOPES = {"MICROSOFT": ("openid", "profile"), "GOOGLE": ("openid", "email")}


def default_http(proxy: ProxySettings | None) -> httpx2.Client:
    return build_client(proxy=proxy)


@dataclass(frozen=True)
class MailboxAuth:
    """Everything a token request of one mailbox needs, secrets included (never logged)."""

    mailbox: str
    grant: Grant
    server: str
    username: str
    authorization_endpoint: str | None
    token_endpoint: str
    device_authorization_endpoint: str | None
    scopes: tuple[str, ...]
    tenant: str | None
    client_id: str
    redirect_uri: str | None
    client_secret: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    proxy: ProxySettings | None = None
    certificate: str | None = None
    certificate_key: str | None = None
    certificate_password: str | None = field(default=None, repr=False)

    @property
    def resource(self) -> str:
        return grants.resource_of(self.scopes)

    @property
    def request_scopes(self) -> tuple[str, ...]:
        """The scopes sent: the configured ones plus, for a user sign-in at a known provider,
        the OpenID scopes that name the account."""
        extra = (
            IDENTITY_SCOPES.get(self.server, ())
            if self.grant is not Grant.CLIENT_CREDENTIALS
            else ()
        )
        return self.scopes + tuple(s for s in extra if s not in self.scopes)

    @property
    def fingerprint(self) -> str:
        """Identifies the settings tokens were obtained with; other settings need new ones."""
        material = [
            self.server,
            str(self.grant),
            self.token_endpoint,
            self.client_id,
            self.tenant,
            sorted(self.scopes),
            self.username.lower(),
        ]
        return hashlib.sha256(json.dumps(material).encode()).hexdigest()

    def credentials(self) -> ClientCredentials:
        if self.certificate:
            cert = load_certificate(
                Path(self.certificate),
                Path(self.certificate_key) if self.certificate_key else None,
                self.certificate_password,
            )
            client_id = self.client_id
            return ClientCredentials(
                client_id,
                assertion=lambda audience, form: client_assertion(
                    cert, client_id, audience, form=form
                ),
            )
        return ClientCredentials(self.client_id, secret=self.client_secret)

    def context(self, phase: str) -> diagnose.Context:
        return diagnose.Context(
            grant=self.grant,
            phase=phase,
            server=self.server,
            username=self.username,
            client_id=self.client_id,
            tenant=self.tenant,
        )


def load_auth(repo: Repo, name: str) -> MailboxAuth:
    record = repo.get_mailbox(name, reveal=True)
    spec = record.spec
    if spec.oauth is None or spec.oauth.grant_type is None:
        raise ConfigError([f"mailboxes[{name}].oauth: not configured"])
    server = repo.get_server(record.authorization_server)
    oauth = resolve.effective_oauth(spec, server)
    if not oauth.token_endpoint or not oauth.client_id or not spec.username:
        raise ConfigError([f"mailboxes[{name}].oauth: incomplete (validate the configuration)"])
    proxy = None
    if spec.proxy is not None and spec.proxy.address:
        proxy = ProxySettings(
            address=spec.proxy.address,
            username=spec.proxy.username,
            password=spec.proxy.password.get_secret_value() if spec.proxy.password else None,
        )
    secret = spec.oauth.client_secret
    password = spec.oauth.password
    cert_password = spec.oauth.client_certificate_password
    return MailboxAuth(
        mailbox=name,
        grant=oauth.grant,
        server=server.name,
        username=spec.username,
        authorization_endpoint=oauth.authorization_endpoint,
        token_endpoint=oauth.token_endpoint,
        device_authorization_endpoint=oauth.device_authorization_endpoint,
        scopes=oauth.scopes,
        tenant=oauth.tenant_id or (None if not server.uses_tenant else "organizations"),
        client_id=oauth.client_id,
        redirect_uri=oauth.redirect_uri,
        client_secret=secret.get_secret_value() if secret and secret.get_secret_value() else None,
        password=password.get_secret_value() if password else None,
        proxy=proxy,
        certificate=spec.oauth.client_certificate,
        certificate_key=spec.oauth.client_certificate_key,
        certificate_password=cert_password.get_secret_value() if cert_password else None,
    )


@dataclass(frozen=True)
class Authorized:
    """The outcome the Authorize action reports."""

    mailbox: str
    account: str | None
    expires_at: datetime
    scopes: tuple[str, ...]
    refresh_token: bool

    @property
    def message(self) -> str:
        who = f" as {self.account}" if self.account else ""
        until = self.expires_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        renew = (
            "it is renewed automatically with the refresh token"
            if self.refresh_token
            else "a new one is requested automatically"
        )
        return f"Login successful{who}: access token valid until {until}; {renew}."

    def as_dict(self) -> dict[str, object]:
        return {
            "mailbox": self.mailbox,
            "authorization_state": AuthState.AUTHORIZED,
            "message": self.message,
            "account": self.account,
            "expires_at": self.expires_at.isoformat(),
            "scopes": list(self.scopes),
            "refresh_token": self.refresh_token,
        }


class TokenManager:
    """Access tokens for mailboxes, from the store or from the token endpoint."""

    def __init__(
        self,
        store: Store,
        *,
        http: HttpFactory = default_http,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        margin: timedelta = timedelta(minutes=5),
        refusals: RefusalPolicy | None = None,
    ) -> None:
        self.store = store
        self.http = http
        self.now = now
        self.margin = margin
        self.refusals = refusals or RefusalPolicy.from_environment()

    @contextmanager
    def endpoint(self, auth: MailboxAuth, phase: str) -> Iterator[Endpoint]:
        with self.http(auth.proxy) as client:
            yield Endpoint(
                auth.token_endpoint, auth.credentials(), auth.context(phase), auth.mailbox, client
            )

    def _fresh(self, token: AccessToken | None) -> bool:
        if token is None:
            return False
        lifetime = token.expires_at - token.obtained_at
        margin = min(self.margin, lifetime / 5)
        return token.expires_at - margin > self.now()

    def access_token(self, name: str) -> str:
        """A valid access token for the mailbox, renewed when it is about to expire."""
        with self.store.read() as repo:
            auth = load_auth(repo, name)
            grant = repo.grant(name)
            token = repo.access_token(name, auth.resource)
        if grant is not None and grant.fingerprint == auth.fingerprint and self._fresh(token):
            assert token is not None
            return token.token
        return self.renew(name).token

    def renew(self, name: str, *, force: bool = False) -> AccessToken:
        """Obtain a new access token, once per mailbox at a time across processes: whoever
        waited for the lock uses the token the holder stored."""
        failure: AuthError | TransientError | None = None
        with self.store.exclusive(f"token:{name}") as repo:
            auth = load_auth(repo, name)
            grant = repo.grant(name)
            current = repo.access_token(name, auth.resource)
            valid_grant = grant is not None and grant.fingerprint == auth.fingerprint
            if not force and valid_grant and self._fresh(current):
                assert current is not None
                return current
            record = repo.get_mailbox(name)
            try:
                if (
                    auth.grant in USER_GRANTS
                    and grant is None
                    and record.auth_state == AuthState.REAUTHORIZATION_REQUIRED
                ):
                    # The refusal stands until a person signs in again: no request is sent.
                    raise AuthorizationRequired(
                        record.auth_detail
                        or f"{name}: authorize it again: mailintake authorize {name}",
                        state=AuthState.REAUTHORIZATION_REQUIRED,
                    )
                response = self._request(
                    auth, grant.refresh_token if valid_grant and grant else None, grant is not None
                )
            except UnconfirmedRefusal as exc:
                failure = self._refused(repo, auth, exc)
            except AuthError as exc:
                repo.set_auth_state(name, exc.state, str(exc))
                if isinstance(exc, AuthorizationRequired) and auth.grant in USER_GRANTS:
                    forget(repo.conn, name)
                failure = exc
            else:
                return self._save(repo, auth, response, new_authorization=not valid_grant)
        assert failure is not None
        raise failure

    def _refused(
        self, repo: Repo, auth: MailboxAuth, exc: UnconfirmedRefusal
    ) -> AuthError | TransientError:
        """A refusal of the refresh token not documented as final: the token is kept and the
        refusal recorded (``status`` shows it); after the policy's refusals over its span, a
        person must sign in again."""
        now = self.now()
        count, first = record_refusal(repo.conn, auth.mailbox, now)
        log.warning(
            "oauth.refresh_refused",
            mailbox=auth.mailbox,
            code=exc.code,
            refusals=count,
            since=first.isoformat(),
            final=self.refusals.gives_up(count, first, now),
        )
        if self.refusals.gives_up(count, first, now):
            minutes = (now - first).total_seconds() / 60
            message = (
                f"{exc} (refused {count} times over {minutes:.0f} minutes, so not a momentary "
                "fault)"
            )
            repo.set_auth_state(auth.mailbox, AuthState.REAUTHORIZATION_REQUIRED, message)
            forget(repo.conn, auth.mailbox)
            return AuthorizationRequired(
                message, state=AuthState.REAUTHORIZATION_REQUIRED, code=exc.code
            )
        code = f" ({exc.code})" if exc.code else ""
        diagnosis = str(exc).removeprefix(f"{auth.mailbox}: ")
        message = (
            f"{auth.mailbox}: the stored refresh token was refused{code}, which can be a "
            f"momentary fault: the token is kept and tried again at the next poll (refusal "
            f"{count}). After {self.refusals.describe()}: {diagnosis}"
        )
        repo.set_auth_state(auth.mailbox, AuthState.AUTHORIZED, message)
        return TransientError(message)

    def _request(
        self, auth: MailboxAuth, refresh_token: str | None, had_grant: bool
    ) -> TokenResponse:
        if auth.grant is Grant.CLIENT_CREDENTIALS:
            with self.endpoint(auth, "token") as endpoint:
                return grants.client_credentials(endpoint, auth.scopes)
        if auth.grant is Grant.PASSWORD:
            if not auth.password:
                raise ConfigError([f"mailboxes[{auth.mailbox}].oauth.password: not stored"])
            with self.endpoint(auth, "token") as endpoint:
                return grants.password(endpoint, auth.username, auth.password, auth.request_scopes)
        if refresh_token is None:
            if had_grant:
                raise AuthorizationRequired(
                    f"{auth.mailbox}: the sign-in settings changed since it was authorized; "
                    f"authorize it again: mailintake authorize {auth.mailbox}",
                    state=AuthState.REAUTHORIZATION_REQUIRED,
                )
            raise AuthorizationRequired(
                f"{auth.mailbox}: not authorized yet; a person must sign in once: "
                f"mailintake authorize {auth.mailbox}",
                state=AuthState.NOT_AUTHORIZED,
            )
        with self.endpoint(auth, "refresh") as endpoint:
            return grants.refresh(endpoint, refresh_token, auth.request_scopes)

    def _save(
        self, repo: Repo, auth: MailboxAuth, response: TokenResponse, *, new_authorization: bool
    ) -> AccessToken:
        token = AccessToken(
            resource=auth.resource,
            token=response.access_token,
            scopes=response.scopes,
            expires_at=response.expires_at,
            obtained_at=response.obtained_at,
        )
        if new_authorization:
            forget_access(repo.conn, auth.mailbox)
        write_access(repo.conn, repo.box, auth.mailbox, token)
        account = response.account or (
            auth.username if auth.grant is not Grant.CLIENT_CREDENTIALS else None
        )
        write_grant(
            repo.conn,
            repo.box,
            mailbox=auth.mailbox,
            grant_type=str(auth.grant),
            fingerprint=auth.fingerprint,
            account=account,
            refresh_token=response.refresh_token,
            new_authorization=new_authorization,
        )
        repo.set_auth_state(auth.mailbox, AuthState.AUTHORIZED, None)
        log.info(
            "oauth.token",
            mailbox=auth.mailbox,
            grant=str(auth.grant),
            resource=auth.resource,
            expires_at=token.expires_at.isoformat(),
            rotated=response.refresh_token is not None,
        )
        return token

    def store_authorization(self, name: str, response: TokenResponse) -> Authorized:
        """Keep what an interactive sign-in (authorization code, device code) obtained."""
        with self.store.exclusive(f"token:{name}") as repo:
            auth = load_auth(repo, name)
            self._save(repo, auth, response, new_authorization=True)
            grant = repo.grant(name)
        return Authorized(
            mailbox=name,
            account=grant.account if grant else None,
            expires_at=response.expires_at,
            scopes=response.scopes,
            refresh_token=response.refresh_token is not None,
        )

    def authorize_now(self, name: str) -> Authorized:
        """Client credentials and password grants: request tokens now, with the stored values."""
        token = self.renew(name, force=True)
        with self.store.read() as repo:
            grant = repo.grant(name)
        return Authorized(
            mailbox=name,
            account=grant.account if grant else None,
            expires_at=token.expires_at,
            scopes=token.scopes,
            refresh_token=bool(grant and grant.refresh_token),
        )
