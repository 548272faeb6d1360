"""Runtime settings: the state folder, the database and the secret key (CONTRACT §2), and
who the web admin listens to (the host names it answers to, the proxies it believes)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _default_home() -> Path:
    return Path.home() / ".local" / "share" / "mailintake"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MAILINTAKE_", extra="ignore")

    home: Path = _default_home()
    database_url: str | None = None
    secret_key: SecretStr | None = None
    # Host names (the Host header) the web admin answers to; others get 400, which stops a
    # web page from reaching the admin through DNS rebinding. Empty: the address `serve`
    # listens on, localhost, 127.0.0.1 and [::1]. MAILINTAKE_ALLOWED_HOSTS=a.example,b.example
    allowed_hosts: Annotated[tuple[str, ...], NoDecode] = ()
    # Addresses or networks (CIDR) of reverse proxies whose X-Forwarded-For and
    # X-Forwarded-Proto are believed. Empty (the default): none, the peer is the client.
    trusted_proxies: Annotated[tuple[str, ...], NoDecode] = ()
    # The HTTPS address at which Microsoft Graph reaches `serve` from the Internet
    # (MAILINTAKE_PUBLIC_URL=https://intake.example.com, `serve --public-url`). Set, Graph
    # mailboxes with push: auto get change notifications at <it>/notifications/graph.
    public_url: str | None = None

    @field_validator("allowed_hosts", "trusted_proxies", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("public_url", mode="before")
    @classmethod
    def _public_url(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if isinstance(value, str):
            problem = public_url_problem(value)
            if problem is not None:
                raise ValueError(problem)
            return value.strip().rstrip("/")
        return value

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.home / 'mailintake.db'}"


def public_url_problem(value: str) -> str | None:
    """Why ``value`` cannot be the public URL (None: it can). Graph delivers notifications
    to HTTPS URLs only; plain HTTP is accepted on loopback, for tests and demos."""
    parts = urlsplit(value.strip())
    loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if not parts.hostname or not (parts.scheme == "https" or (parts.scheme == "http" and loopback)):
        return f"public_url: '{value}' is not an https:// URL (e.g. https://intake.example.com)"
    if parts.query or parts.fragment:
        return f"public_url: '{value}' may not have a query or a fragment"
    return None
