"""Which refresh-token limit applies (Microsoft 90 days without use; Google six months
without use, or seven days after consent while the app is in Testing), from when it counts,
and when an end is warned of."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mailintake.config.servers import GOOGLE, MICROSOFT, ServerDefinition
from mailintake.health.expiry import (
    GOOGLE_REFRESH,
    GOOGLE_TESTING_REFRESH,
    MICROSOFT_REFRESH,
    Expiry,
    refresh_ends_at,
    refresh_limit,
    secret_end,
)
from mailintake.store.health import GrantAge

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
CUSTOM = ServerDefinition(name="corp-idp", token_endpoint="https://idp.example.com/token")


def test_the_limit_follows_the_server_that_issues_the_tokens() -> None:
    assert refresh_limit(MICROSOFT, None) is MICROSOFT_REFRESH
    sandbox = ServerDefinition(name="MICROSOFT", token_endpoint="http://127.0.0.1:5/t/token")
    assert refresh_limit(sandbox, sandbox.token_endpoint) is MICROSOFT_REFRESH
    entra = "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"
    assert refresh_limit(CUSTOM, entra) is MICROSOFT_REFRESH
    assert refresh_limit(GOOGLE, GOOGLE.token_endpoint) is GOOGLE_REFRESH
    assert refresh_limit(GOOGLE, None, testing=True) is GOOGLE_TESTING_REFRESH
    assert refresh_limit(CUSTOM, CUSTOM.token_endpoint) is None  # none published


def test_inactivity_counts_from_the_last_use_testing_from_consent() -> None:
    grant = GrantAge("a", "authorization_code", True, T0, T0 + timedelta(days=3), T0)
    assert refresh_ends_at(MICROSOFT_REFRESH, grant) == T0 + timedelta(days=93)
    assert refresh_ends_at(GOOGLE_REFRESH, grant) == T0 + timedelta(days=185)
    assert refresh_ends_at(GOOGLE_TESTING_REFRESH, grant) == T0 + timedelta(days=7)
    assert GOOGLE_TESTING_REFRESH.warn_before == timedelta(days=2)
    assert not GOOGLE_TESTING_REFRESH.sliding  # a keep-alive refresh cannot move it


def test_an_end_is_expiring_inside_its_warning_time_then_expired() -> None:
    end = Expiry("a", "client_secret", T0, timedelta(days=14), "", "")
    assert end.state(T0 - timedelta(days=15)) is None
    assert end.state(T0 - timedelta(days=14)) == "expiring"
    assert end.state(T0 - timedelta(seconds=1)) == "expiring"
    assert end.state(T0) == "expired"


def test_a_client_secret_ends_at_the_start_of_its_date() -> None:
    assert secret_end("2027-06-30") == datetime(2027, 6, 30, tzinfo=UTC)
    assert secret_end(None) is None
