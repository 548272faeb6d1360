"""Known ends, read ahead of time: a refresh token's limit, a client secret's expiry date (the
administrator enters it: ``oauth.client_secret_expires``) and a client certificate's
notValidAfter.

Refresh tokens, by the authorization server that issued them:
- Microsoft: 90 days without use; every use returns a new one (rotation), so the limit runs
  from the last token answer. Source: "Refresh tokens in the Microsoft identity platform",
  Token lifetime, https://learn.microsoft.com/en-us/entra/identity-platform/refresh-tokens
  (oauth-facts §1.7; the refusal is AADSTS700082).
- Google: a refresh token not used for six months stops working; an app whose OAuth consent
  screen is in "Testing" publishing status gets refresh tokens that expire seven days after
  consent, used or not. Source: "Using OAuth 2.0 to Access Google APIs", Refresh token
  expiration, https://developers.google.com/identity/protocols/oauth2#expiration
  (oauth-facts §4.5).
Other authorization servers publish no limit: nothing is warned of.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from mailintake.config.clouds import is_microsoft_server
from mailintake.config.servers import GOOGLE_TOKEN_HOSTS, MICROSOFT_LOGIN_HOSTS, ServerDefinition
from mailintake.enums import AuthState
from mailintake.errors import MailintakeError
from mailintake.observability.logging import get_logger
from mailintake.store.health import GrantAge, MailboxFacts, facts, grant_ages
from mailintake.store.repo import Repo

log = get_logger(__name__)

REFRESH_TOKEN = "refresh_token"
CLIENT_SECRET = "client_secret"
CERTIFICATE = "certificate"
KINDS = (REFRESH_TOKEN, CLIENT_SECRET, CERTIFICATE)
WARN_BEFORE = timedelta(days=14)


@dataclass(frozen=True)
class RefreshLimit:
    provider: str
    lifetime: timedelta
    sliding: bool  # True: counted from the last use (a keep-alive refresh moves it)
    warn_before: timedelta
    source: str


MICROSOFT_REFRESH = RefreshLimit(
    "Microsoft",
    timedelta(days=90),
    True,
    WARN_BEFORE,
    "https://learn.microsoft.com/en-us/entra/identity-platform/refresh-tokens",
)
GOOGLE_REFRESH = RefreshLimit(
    "Google",
    timedelta(days=182),
    True,
    WARN_BEFORE,
    "https://developers.google.com/identity/protocols/oauth2#expiration",
)
GOOGLE_TESTING_REFRESH = RefreshLimit(
    "Google (app in Testing)",
    timedelta(days=7),
    False,
    timedelta(days=2),
    "https://developers.google.com/identity/protocols/oauth2#expiration",
)


def refresh_limit(
    server: ServerDefinition | None, token_endpoint: str | None, *, testing: bool = False
) -> RefreshLimit | None:
    """The refresh-token limit of the server that issues the mailbox's tokens, if known."""
    host = urlsplit((token_endpoint or "").replace("{tenant}", "t")).hostname
    name = server.name if server is not None else None
    if is_microsoft_server(name) or host in MICROSOFT_LOGIN_HOSTS:
        return MICROSOFT_REFRESH
    if name == "GOOGLE" or host in GOOGLE_TOKEN_HOSTS:
        return GOOGLE_TESTING_REFRESH if testing else GOOGLE_REFRESH
    return None


def refresh_ends_at(limit: RefreshLimit, grant: GrantAge) -> datetime:
    start = grant.used_at if limit.sliding else grant.authorized_at
    return start + limit.lifetime


@dataclass(frozen=True)
class Expiry:
    mailbox: str
    kind: str  # refresh_token | client_secret | certificate
    ends_at: datetime
    warn_before: timedelta
    what: str  # what ends, for a person
    action: str  # what to do before it does

    def state(self, now: datetime) -> str | None:
        """``expired``, ``expiring`` (inside its warning time) or None (not yet)."""
        if now >= self.ends_at:
            return "expired"
        if now >= self.ends_at - self.warn_before:
            return "expiring"
        return None

    @property
    def warned_from(self) -> datetime:
        return self.ends_at - self.warn_before


def secret_end(value: object) -> datetime | None:
    """``client_secret_expires`` (an ISO date) as the first moment it no longer works: the
    start of that day, UTC (Entra shows the date a secret expires on)."""
    if not value:
        return None
    day = value if isinstance(value, date) else date.fromisoformat(str(value))
    return datetime.combine(day, time(0), tzinfo=UTC)


def _token_endpoint(f: MailboxFacts, server: ServerDefinition | None) -> str | None:
    oauth = f.oauth or {}
    own = oauth.get("token_endpoint")
    return str(own) if own else (server.token_endpoint if server else None)


def mailbox_limit(f: MailboxFacts, servers: dict[str, ServerDefinition]) -> RefreshLimit | None:
    server = servers.get(f.authorization_server)
    testing = (f.oauth or {}).get("publishing_status") == "testing"
    return refresh_limit(server, _token_endpoint(f, server), testing=testing)


def _refresh_expiry(f: MailboxFacts, limit: RefreshLimit, grant: GrantAge) -> Expiry:
    ends = refresh_ends_at(limit, grant)
    if limit.sliding:
        what = (
            f"its refresh token expires after {limit.lifetime.days} days without use "
            f"({limit.provider}); last used {grant.used_at:%Y-%m-%d %H:%M} UTC"
        )
        action = (
            "poll it or let the keep-alive refresh run (mailintake serve or a worker); "
            f"after the end: mailintake authorize {f.name}"
        )
    else:
        what = (
            f"its refresh token expires {limit.lifetime.days} days after consent "
            f"({limit.provider}); authorized {grant.authorized_at:%Y-%m-%d %H:%M} UTC"
        )
        action = (
            f"authorize it again before then (mailintake authorize {f.name}), or publish "
            "the app (Production) and authorize once more"
        )
    return Expiry(f.name, REFRESH_TOKEN, ends, limit.warn_before, what, action)


def refresh_expiry(repo: Repo, name: str) -> Expiry | None:
    """The end of the mailbox's refresh token, when its server publishes a limit."""
    grants = grant_ages(repo.conn, name)
    rows = facts(repo.conn, name)
    if not grants or not rows or not grants[0].has_refresh_token:
        return None
    limit = mailbox_limit(rows[0], {s.name: s for s in repo.list_servers()})
    return None if limit is None else _refresh_expiry(rows[0], limit, grants[0])


def _certificate_expiry(repo: Repo, f: MailboxFacts, path: str) -> Expiry | None:
    # Imported here: the certificate libraries load only where a mailbox has a certificate
    # (a cron-started `mailintake status` otherwise pays ~0.1 s for them).
    from mailintake.oauth.assertion import certificate_not_after

    password = None
    try:
        if not path.endswith((".pem", ".crt", ".cer")):  # PKCS#12 may need its password
            spec = repo.get_mailbox(f.name, reveal=True).spec
            secret = spec.oauth.client_certificate_password if spec.oauth else None
            password = secret.get_secret_value() if secret else None
        ends = certificate_not_after(Path(path).expanduser(), password)
    except MailintakeError as exc:
        log.warning("health.certificate_unreadable", mailbox=f.name, error=str(exc))
        return None
    return Expiry(
        f.name,
        CERTIFICATE,
        ends,
        WARN_BEFORE,
        f"its client certificate {path} is valid until {ends:%Y-%m-%d %H:%M} UTC",
        "create a new certificate, upload it to the application registration and set "
        "oauth.client_certificate to it",
    )


def expiries(repo: Repo) -> list[Expiry]:
    """Every known end of every mailbox that signs in with OAuth (disabled ones too: a
    disabled mailbox whose token dies cannot simply be enabled again)."""
    servers = {s.name: s for s in repo.list_servers()}
    grants = {g.mailbox: g for g in grant_ages(repo.conn)}
    found: list[Expiry] = []
    for f in facts(repo.conn):
        oauth = f.oauth
        if oauth is None:
            continue
        grant = grants.get(f.name)
        limit = mailbox_limit(f, servers)
        if (
            limit is not None
            and grant is not None
            and grant.has_refresh_token
            and f.auth_state == AuthState.AUTHORIZED
        ):
            found.append(_refresh_expiry(f, limit, grant))
        secret_ends = secret_end(oauth.get("client_secret_expires"))
        if secret_ends is not None:
            found.append(
                Expiry(
                    f.name,
                    CLIENT_SECRET,
                    secret_ends,
                    WARN_BEFORE,
                    f"its client secret expires on {secret_ends:%Y-%m-%d}",
                    "create a new client secret in the application registration, set "
                    "oauth.client_secret and oauth.client_secret_expires",
                )
            )
        certificate = oauth.get("client_certificate")
        if certificate and (cert := _certificate_expiry(repo, f, str(certificate))):
            found.append(cert)
    return found
