"""When a refusal of the stored refresh token that is not documented as final becomes final.

Entra sometimes refuses a refresh token with ``invalid_grant`` (e.g. AADSTS70000) and accepts
the same token on the next try (https://github.com/BingAds/BingAds-Python-SDK/issues/279).
MSAL keeps the refresh token after ``invalid_grant``
(https://github.com/AzureAD/microsoft-authentication-library-for-python/issues/314,
https://github.com/AzureAD/microsoft-authentication-library-for-android/pull/389), and so
does mailintake: such a refusal is counted, the mailbox stays authorized and the next poll
tries again (the scheduler backs off after each failed poll). Only ``refusals`` refusals
spread over at least ``span`` ask a person to sign in again. Refusals documented as final
(``Fix.final``: revoked, expired, multi-factor authentication or consent needed) do so at once.

Settings: ``MAILINTAKE_OAUTH_REFUSALS`` (default 3) and ``MAILINTAKE_OAUTH_REFUSAL_MINUTES``
(default 30).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from mailintake.errors import ConfigError

REFUSALS = 3
REFUSAL_MINUTES = 30


class RefusalSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MAILINTAKE_OAUTH_", extra="ignore")

    refusals: int = Field(default=REFUSALS, ge=1)
    refusal_minutes: float = Field(default=REFUSAL_MINUTES, ge=0)


@dataclass(frozen=True)
class RefusalPolicy:
    """How many refusals over how long make an unclear refusal final."""

    refusals: int = REFUSALS
    span: timedelta = timedelta(minutes=REFUSAL_MINUTES)

    @classmethod
    def from_environment(cls) -> RefusalPolicy:
        try:
            settings = RefusalSettings()
        except ValidationError as exc:
            raise ConfigError(
                f"MAILINTAKE_OAUTH_{str(error['loc'][0]).upper()}: {error['msg']}"
                for error in exc.errors()
            ) from None
        return cls(settings.refusals, timedelta(minutes=settings.refusal_minutes))

    def gives_up(self, count: int, first: datetime, now: datetime) -> bool:
        """Whether ``count`` refusals, the first at ``first``, are enough to stop trying."""
        return count >= self.refusals and now - first >= self.span

    def describe(self) -> str:
        minutes = self.span.total_seconds() / 60
        return f"{self.refusals} refusals over {minutes:g} minutes"
