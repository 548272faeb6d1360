"""When unclear refusals of a refresh token become final, and the settings that say so."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mailintake.errors import ConfigError
from mailintake.oauth.refusals import RefusalPolicy

T0 = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


def test_three_refusals_spread_over_thirty_minutes_by_default() -> None:
    policy = RefusalPolicy()
    assert not policy.gives_up(1, T0, T0 + timedelta(hours=5))  # one, however old
    assert not policy.gives_up(3, T0, T0 + timedelta(minutes=29))  # three, too close
    assert policy.gives_up(3, T0, T0 + timedelta(minutes=30))
    assert policy.describe() == "3 refusals over 30 minutes"


def test_the_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILINTAKE_OAUTH_REFUSALS", "5")
    monkeypatch.setenv("MAILINTAKE_OAUTH_REFUSAL_MINUTES", "90")
    assert RefusalPolicy.from_environment() == RefusalPolicy(5, timedelta(minutes=90))


@pytest.mark.parametrize(
    ("name", "value"),
    [("MAILINTAKE_OAUTH_REFUSALS", "0"), ("MAILINTAKE_OAUTH_REFUSAL_MINUTES", "soon")],
)
def test_a_bad_setting_names_itself(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        RefusalPolicy.from_environment()
    assert caught.value.problems[0].startswith(f"{name}: ")
