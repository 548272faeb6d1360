"""What a token request of one mailbox needs (its OAuth settings resolved, secrets included)
and the key of the application a client-credentials token belongs to.

Client-credentials tokens are the application's, not the mailbox's: every mailbox signing in
with the same token endpoint, client id, tenant, scopes and credential shares one
(``app_key``). The credential is part of the key so that two registrations with the same
client id but different secrets or certificates never share a token; the key is an HMAC
under the store's secret key (SecretBox.keyed_digest), so the client secret it covers is
neither stored in clear nor recoverable by hashing guesses. Rotating the secret key changes
every application key; the store then forgets the application tokens (one request each).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from mailintake.config import clouds, resolve
from mailintake.config.matrix import Grant
from mailintake.crypto import SecretBox
from mailintake.errors import ConfigError
from mailintake.net.http import ProxySettings
from mailintake.oauth import diagnose, grants
from mailintake.oauth.assertion import client_assertion, load_certificate
from mailintake.oauth.grants import ClientCredentials
from mailintake.store import app_tokens
from mailintake.store.repo import Repo
from mailintake.store.tokens import AccessToken

# OpenID scopes added to user sign-ins so the answer names the account that signed in.
IDENTITY_SCOPES = {
    **{c.server: ("openid", "profile") for c in clouds.CLOUDS},
    "GOOGLE": ("openid", "email"),
}
APP_KEY_PURPOSE = "mailintake application token key"


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

    @property
    def shared(self) -> bool:
        """Its tokens are the application's (client credentials), shared by every mailbox
        with the same application key; user grants keep tokens per mailbox."""
        return self.grant is Grant.CLIENT_CREDENTIALS

    def app_key(self, box: SecretBox) -> str:
        """The application a client-credentials token belongs to: an HMAC (keyed with the
        store's secret key) of the token endpoint, client id, tenant, scopes and the
        credential (the client secret, or the certificate file's content)."""
        material = [
            self.token_endpoint,
            self.client_id,
            self.tenant,
            sorted(self.scopes),
            self._credential_identity(),
        ]
        return box.keyed_digest(APP_KEY_PURPOSE, json.dumps(material))

    def _credential_identity(self) -> str:
        if self.certificate:
            try:
                content = Path(self.certificate).read_bytes()
            except OSError:
                return f"certificate-path:{self.certificate}"  # the request will say why
            return f"certificate:{hashlib.sha256(content).hexdigest()}"
        return f"secret:{self.client_secret or ''}"

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
            login_host=urlsplit(self.token_endpoint).hostname,
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


def stored_access(repo: Repo, auth: MailboxAuth) -> AccessToken | None:
    """The access token the mailbox uses now: its application's (client credentials) or its
    own for the resource."""
    if auth.shared:
        return app_tokens.read(repo.conn, repo.box, auth.app_key(repo.box))
    return repo.access_token(auth.mailbox, auth.resource)
