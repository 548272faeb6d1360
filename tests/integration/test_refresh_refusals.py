"""A refresh token refused in a way not documented as final is kept: the mailbox stays
authorized and the next try uses the same token; only repeated refusals over time, or a
refusal documented as final, ask a person to sign in again. Against the sandbox identity
provider, told to refuse the next refreshes as Entra sometimes does (AADSTS70000)."""

from __future__ import annotations

import datetime as dt

import httpx2
import pytest

from mailintake.errors import AuthorizationRequired, NetworkError, TransientError
from mailintake.net.http import ProxySettings, build_client
from mailintake.oauth.authorize import Interaction, authorize
from mailintake.oauth.tokens import TokenManager
from mailintake.status import mailbox_status
from mailintake.store.repo import Store
from sandbox.idp import IdentityProvider
from tests.support.oauth import ANNA, ANNA_PASSWORD, NATIVE_APP, Browser, configure, mailbox


class Clock:
    def __init__(self) -> None:
        self.at = dt.datetime.now(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += dt.timedelta(**delta)


def signed_in(store: Store, idp: IdentityProvider, clock: Clock) -> TokenManager:
    """Mailbox ``user`` signed in as Anna, its access token already expired."""
    idp.refresh_refusals.clear()
    configure(
        store,
        idp.base_url,
        mailbox(
            "user", "authorization_code", client_id=NATIVE_APP, redirect_uri="http://localhost/"
        ),
    )
    manager = TokenManager(store, now=clock)
    browser = Browser(ANNA, ANNA_PASSWORD)
    authorize(
        manager,
        "user",
        Interaction(show=lambda _: None, open_url=browser.sign_in, ask=lambda _: "", timeout=30),
    )
    clock.advance(hours=2)
    return manager


def refresh_token(store: Store) -> str | None:
    with store.read() as repo:
        grant = repo.grant("user")
    return grant.refresh_token if grant else None


def state(store: Store) -> tuple[str, str | None]:
    with store.read() as repo:
        row = next(r for r in mailbox_status(repo) if r["name"] == "user")
    return row["authorization_state"], row["authorization_detail"]


def test_one_momentary_refusal_keeps_the_refresh_token(store: Store, idp: IdentityProvider) -> None:
    clock = Clock()
    manager = signed_in(store, idp, clock)
    kept = refresh_token(store)
    idp.refuse_next_refresh("invalid_grant", 70000, client_id=NATIVE_APP, username=ANNA)
    with pytest.raises(TransientError) as caught:
        manager.access_token("user")
    assert not isinstance(caught.value, AuthorizationRequired)
    assert "AADSTS70000" in str(caught.value)
    assert refresh_token(store) == kept  # the token was not thrown away
    authorization, detail = state(store)
    assert authorization == "authorized"
    assert detail is not None
    assert "AADSTS70000" in detail
    assert "refusal 1" in detail
    # The next poll works with the same refresh token, and the refusal is forgotten.
    clock.advance(minutes=5)
    assert manager.access_token("user")
    assert refresh_token(store) != kept  # rotated by the successful refresh
    assert state(store) == ("authorized", None)
    with store.read() as repo:
        assert repo.grant("user").refusals == 0  # type: ignore[union-attr]


def test_refusals_spread_over_thirty_minutes_ask_for_a_new_sign_in(
    store: Store, idp: IdentityProvider
) -> None:
    clock = Clock()
    manager = signed_in(store, idp, clock)
    idp.refuse_next_refresh("invalid_grant", 70000, times=4, username=ANNA)
    for _ in range(2):
        with pytest.raises(TransientError):
            manager.access_token("user")
        assert state(store)[0] == "authorized"
        clock.advance(minutes=10)
    # The third refusal, 20 minutes after the first: not yet spread over 30 minutes.
    with pytest.raises(TransientError):
        manager.access_token("user")
    assert state(store)[0] == "authorized"
    assert refresh_token(store) is not None
    clock.advance(minutes=11)
    with pytest.raises(AuthorizationRequired) as caught:
        manager.access_token("user")
    assert caught.value.code == "AADSTS70000"
    authorization, detail = state(store)
    assert authorization == "reauthorization_required"
    assert detail is not None
    assert "refused 4 times over 31 minutes" in detail
    assert "mailintake authorize user" in detail


def test_three_quick_refusals_are_not_yet_final(store: Store, idp: IdentityProvider) -> None:
    clock = Clock()
    manager = signed_in(store, idp, clock)
    idp.refuse_next_refresh(times=3, username=ANNA)
    for _ in range(3):
        with pytest.raises(TransientError):
            manager.access_token("user")
        clock.advance(minutes=1)
    assert state(store)[0] == "authorized"
    assert manager.access_token("user")  # the glitch is over: the same token works


def test_a_refusal_documented_as_final_asks_for_a_new_sign_in_at_once(
    store: Store, idp: IdentityProvider
) -> None:
    clock = Clock()
    manager = signed_in(store, idp, clock)
    idp.refuse_next_refresh(
        "invalid_grant",
        50173,
        username=ANNA,
        text="The provided grant has expired due to it being revoked, a fresh auth token is "
        "needed. The user might have changed or reset their password.",
    )
    with pytest.raises(AuthorizationRequired) as caught:
        manager.access_token("user")
    assert caught.value.code == "AADSTS50173"
    assert state(store)[0] == "reauthorization_required"
    assert refresh_token(store) is None


def test_a_network_failure_never_touches_the_stored_tokens(
    store: Store, idp: IdentityProvider
) -> None:
    clock = Clock()
    signed_in(store, idp, clock)
    kept = refresh_token(store)

    def unreachable(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("connection refused", request=request)

    def http(proxy: ProxySettings | None) -> httpx2.Client:
        return build_client(proxy=proxy, transport=httpx2.MockTransport(unreachable))

    offline = TokenManager(store, http=http, now=clock)
    for _ in range(4):
        with pytest.raises(NetworkError):
            offline.access_token("user")
        clock.advance(minutes=15)
    assert refresh_token(store) == kept
    assert state(store) == ("authorized", None)
    with store.read() as repo:
        assert repo.grant("user").refusals == 0  # type: ignore[union-attr]
