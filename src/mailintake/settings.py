"""Runtime settings: the state folder, the database and the secret key (CONTRACT §2)."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_home() -> Path:
    return Path.home() / ".local" / "share" / "mailintake"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MAILINTAKE_", extra="ignore")

    home: Path = _default_home()
    database_url: str | None = None
    secret_key: SecretStr | None = None

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.home / 'mailintake.db'}"
