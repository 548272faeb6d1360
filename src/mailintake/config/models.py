"""Pydantic models of the configuration schema (CONTRACT §3): the shape and value types.

These models check only what a single value can tell (types, enums, name patterns); the
rules that relate fields to each other — the seed's matrix, population from the
authorization server, cross-references — live in ``rules.py``. Every field is optional
here so that one missing value never hides the other problems in the same mailbox.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    SecretStr,
    StringConstraints,
)

from mailintake.config.matrix import Grant, Protocol
from mailintake.enums import AfterImport

# A name is also a folder name (the folder output writes <path>/<mailbox>/…): it may not
# start with a dot, so ".", ".." and hidden names are refused.
NAME_PATTERN = r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$"
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2048)]

Security = Literal["ssl", "starttls", "none"]
OutputType = Literal["folder", "webhook"]


def _switch(value: object) -> object:
    """``push: off`` as written: YAML 1.1, which the configuration file is read with, reads
    ``off`` (and ``no``, ``false``) as false, and ``on`` (``yes``, ``true``) as true."""
    if value is False:
        return "off"
    return "auto" if value is True else value


Push = Annotated[Literal["auto", "off"], BeforeValidator(_switch)]
PublishingStatus = Literal["testing", "production"]
# A date, kept and exported as its ISO text (2027-06-30).
IsoDate = Annotated[date, PlainSerializer(lambda d: d.isoformat(), return_type=str)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class ScopesByProtocol(_Strict):
    imap: list[Text] | None = None
    pop3: list[Text] | None = None
    graph: list[Text] | None = None


class ServerSpec(_Strict):
    name: Name
    issuer: Text | None = None
    authorization_endpoint: Text | None = None
    token_endpoint: Text | None = None
    device_authorization_endpoint: Text | None = None
    scopes: ScopesByProtocol | None = None
    app_scopes: ScopesByProtocol | None = None


class OutputSpec(_Strict):
    name: Name
    type: OutputType
    path: Text | None = None
    url: Text | None = None
    headers: dict[str, SecretStr] | None = None


# Fields stored encrypted (CONTRACT §2), by their path in a mailbox.
MAILBOX_SECRET_FIELDS = (
    "oauth.client_secret",
    "oauth.client_certificate_password",
    "oauth.password",
    "proxy.password",
)


class OAuthSpec(_Strict):
    authorization_server: Name | None = None
    grant_type: Grant | None = None
    authorization_endpoint: Text | None = None
    token_endpoint: Text | None = None
    device_authorization_endpoint: Text | None = None
    scopes: list[Text] | None = None
    tenant_id: Text | None = None
    client_id: Text | None = None
    client_secret: SecretStr | None = None
    # The date the client secret stops working, as the app registration shows it: health
    # warns ahead of it (mailintake.health.expiry).
    client_secret_expires: IsoDate | None = None
    client_certificate: Text | None = None
    client_certificate_key: Text | None = None
    client_certificate_password: SecretStr | None = None
    redirect_uri: Text | None = None
    password: SecretStr | None = None
    # Google: the app's OAuth consent screen publishing status; in "testing" refresh tokens
    # expire seven days after consent (health warns ahead of it).
    publishing_status: PublishingStatus | None = None


class ProxySpec(_Strict):
    address: Text | None = None
    username: Text | None = None
    password: SecretStr | None = None


class MailboxSpec(_Strict):
    name: Name
    protocol: Protocol | None = None
    host: Text | None = None
    port: Annotated[int, Field(ge=1, le=65535)] | None = None
    security: Security | None = None
    graph_url: Text | None = None
    username: Text | None = None
    shared_mailbox: Text | None = None
    folder: Text | None = None
    after_import: AfterImport | None = None
    move_to: Text | None = None
    poll_interval: Annotated[int, Field(ge=10, le=86400)] | None = None
    push: Push | None = None
    max_message_size: int | Text | None = None
    max_tries: Annotated[int, Field(ge=1, le=1000)] | None = None
    output: Name | None = None
    enabled: bool | None = None
    oauth: OAuthSpec | None = None
    proxy: ProxySpec | None = None


# --- alerts (config/alerts.py checks them) ------------------------------------------------

ChannelType = Literal["webhook", "email"]
EmailSecurity = Literal["starttls", "tls", "none"]
AlertKind = Literal["health", "refresh_token", "client_secret", "certificate"]
AlertState = Literal["lagging", "needs_a_person", "failing", "expiring", "expired"]
DEFAULT_REMINDER_INTERVAL = 86400  # seconds; also the least: a reminder at most daily


class ChannelSpec(_Strict):
    """Where alerts go: a webhook (``url``, ``headers``) or an email (SMTP) destination."""

    name: Name
    type: ChannelType
    timeout: Annotated[float, Field(gt=0, le=300)] | None = None
    url: Text | None = None
    headers: dict[str, SecretStr] | None = None
    host: Text | None = None
    port: Annotated[int, Field(ge=1, le=65535)] | None = None
    security: EmailSecurity | None = None
    username: Text | None = None
    password: SecretStr | None = None
    sender: Text | None = Field(default=None, alias="from")
    to: list[Text] | None = None
    ca_file: Text | None = None

    def secrets(self) -> dict[str, SecretStr]:
        """The channel's secrets by field path (``password``, ``headers.<name>``)."""
        found = {f"headers.{k}": v for k, v in (self.headers or {}).items()}
        if self.password is not None:
            found["password"] = self.password
        return found


class AlertsSpec(_Strict):
    kinds: list[AlertKind] | None = None
    states: list[AlertState] | None = None
    reminder_interval: int | None = None
    channels: list[ChannelSpec] = Field(default_factory=list)

    def alerts_on(self, kind: str, state: str) -> bool:
        """Whether a condition of ``kind`` in ``state`` is to be sent (default: all)."""
        return (self.kinds is None or kind in self.kinds) and (
            self.states is None or state in self.states
        )

    @property
    def reminder_seconds(self) -> int:
        return self.reminder_interval or DEFAULT_REMINDER_INTERVAL


class ConfigDocument(_Strict):
    authorization_servers: list[ServerSpec] = Field(default_factory=list)
    outputs: list[OutputSpec] = Field(default_factory=list)
    mailboxes: list[MailboxSpec] = Field(default_factory=list)
    alerts: AlertsSpec | None = None
