"""Runtime settings: the state folder, the database and the secret key (CONTRACT §2), and
who the web admin listens to (the host names it answers to, the proxies it believes)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

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

    @field_validator("allowed_hosts", "trusted_proxies", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.home / 'mailintake.db'}"
