"""The token lifecycle of a mailbox: a valid access token on demand, renewed ahead of expiry,
at most one renewal per mailbox at a time across threads and processes, the newest refresh
token always stored, and every refusal recorded as the mailbox's authorization state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx2

from mailintake.config.matrix import USER_GRANTS, Grant
from mailintake.enums import AuthState
from mailintake.errors import AuthError, AuthorizationRequired, ConfigError, TransientError
from mailintake.net.http import ProxySettings, build_client
from mailintake.oauth import grants
from mailintake.oauth.diagnose import UnconfirmedRefusal
from mailintake.oauth.grants import Endpoint, TokenResponse
from mailintake.oauth.mailbox_auth import MailboxAuth, load_auth, stored_access
from mailintake.oauth.refusals import RefusalPolicy
from mailintake.observability.logging import get_logger
from mailintake.store import app_tokens
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

# The longest a renewal waits for another process's renewal of the same token (a token
# request is bounded by the HTTP client's timeouts, well under this).
LOCK_WAIT = 120.0
HttpFactory = Callable[[ProxySettings | None], httpx2.Client]


def default_http(proxy: ProxySettings | None) -> httpx2.Client:
    return build_client(proxy=proxy)


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
        lock_wait: float = LOCK_WAIT,
    ) -> None:
        self.store = store
        self.lock_wait = lock_wait
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
        return token is not None and self.fresh_until(token) > self.now()

    def access_token(self, name: str) -> str:
        """A valid access token for the mailbox, renewed when it is about to expire."""
        return self.current(name).token

    def fresh_until(self, token: AccessToken) -> datetime:
        """When ``token`` stops being handed out (it is renewed from then on): a session
        signed in with it signs in again before then, ahead of the token's expiry."""
        lifetime = token.expires_at - token.obtained_at
        return token.expires_at - min(self.margin, lifetime / 5)

    def current(self, name: str) -> AccessToken:
        """The mailbox's valid access token with its lifetime, renewed when it is about to
        expire."""
        with self.store.read() as repo:
            auth = load_auth(repo, name)
            grant = repo.grant(name)
            token = stored_access(repo, auth)
            # A shared token obtained for another mailbox: this one's state says so too.
            adopted = not auth.shared or repo.get_mailbox(name).auth_state == AuthState.AUTHORIZED
        valid_grant = grant is not None and grant.fingerprint == auth.fingerprint
        if valid_grant and adopted and self._fresh(token):
            assert token is not None
            return token
        return self.renew(name)

    def providers(self, name: str) -> tuple[Callable[[], str], Callable[[], str]]:
        """The mailbox's token, and a new one when a server refused the one given last: a
        shared token another mailbox already replaced is not requested again."""
        given: list[str] = []

        def token() -> str:
            given[:] = [self.access_token(name)]
            return given[0]

        def renew() -> str:
            given[:] = [self.renew(name, force=True, rejected=given[0] if given else None).token]
            return given[0]

        return token, renew

    def renew(self, name: str, *, force: bool = False, rejected: str | None = None) -> AccessToken:
        """Obtain a new access token, once per mailbox (user grants) or per application
        (client credentials) at a time across processes: whoever waited for the lock uses
        the token the holder stored. ``force`` renews even a fresh token, unless the one a
        server refused (``rejected``) was already replaced."""
        with self.store.read() as repo:
            auth = load_auth(repo, name)
            lock = f"app-token:{auth.app_key(repo.box)}" if auth.shared else f"token:{name}"
        failure: AuthError | TransientError | None = None
        with self.store.exclusive(lock, wait=self.lock_wait) as repo:
            auth = load_auth(repo, name)
            grant = repo.grant(name)
            current = stored_access(repo, auth)
            record = repo.get_mailbox(name)
            valid_grant = grant is not None and grant.fingerprint == auth.fingerprint
            replaced = rejected is not None and current is not None and current.token != rejected
            if (not force or replaced) and (valid_grant or auth.shared) and self._fresh(current):
                assert current is not None
                if not valid_grant or record.auth_state != AuthState.AUTHORIZED:
                    self._adopt(repo, auth, current, new=not valid_grant)  # another's token
                return current
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
        if auth.shared:
            app_tokens.write(repo.conn, repo.box, auth.app_key(repo.box), auth.client_id, token)
        else:
            write_access(repo.conn, repo.box, auth.mailbox, token)
        account = response.account or (auth.username if not auth.shared else None)
        self._grant(repo, auth, account, response.refresh_token, new_authorization)
        log.info(
            "oauth.token",
            mailbox=auth.mailbox,
            grant=str(auth.grant),
            resource=auth.resource,
            shared=auth.shared,
            expires_at=token.expires_at.isoformat(),
            rotated=response.refresh_token is not None,
        )
        return token

    def _adopt(self, repo: Repo, auth: MailboxAuth, token: AccessToken, *, new: bool) -> None:
        """A mailbox starts using its application's token (another mailbox obtained it)."""
        if new:
            forget_access(repo.conn, auth.mailbox)
        self._grant(repo, auth, None, None, new)
        log.info(
            "oauth.token_shared",
            mailbox=auth.mailbox,
            resource=auth.resource,
            expires_at=token.expires_at.isoformat(),
        )

    @staticmethod
    def _grant(
        repo: Repo,
        auth: MailboxAuth,
        account: str | None,
        refresh_token: str | None,
        new_authorization: bool,
    ) -> None:
        write_grant(
            repo.conn,
            repo.box,
            mailbox=auth.mailbox,
            grant_type=str(auth.grant),
            fingerprint=auth.fingerprint,
            account=account,
            refresh_token=refresh_token,
            new_authorization=new_authorization,
        )
        repo.set_auth_state(auth.mailbox, AuthState.AUTHORIZED, None)

    def store_authorization(self, name: str, response: TokenResponse) -> Authorized:
        """Keep what an interactive sign-in (authorization code, device code) obtained."""
        with self.store.exclusive(f"token:{name}", wait=self.lock_wait) as repo:
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


__all__ = ["Authorized", "MailboxAuth", "TokenManager", "load_auth", "stored_access"]
