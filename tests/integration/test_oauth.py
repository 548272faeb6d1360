"""Every grant end to end against the sandbox identity provider (Entra-compatible), and what
the administrator sees when it says no."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from mailintake.errors import (
    AuthError,
    AuthorizationRequired,
    NetworkError,
    PasswordUpdateRequired,
)
from mailintake.oauth.authorize import Interaction, authorize
from mailintake.oauth.tokens import TokenManager, load_auth, stored_access
from mailintake.services.edit import edit_item
from mailintake.store import app_tokens
from mailintake.store.repo import Store
from sandbox.idp import IdentityProvider
from tests.support.oauth import (
    ANNA,
    ANNA_PASSWORD,
    BORIS,
    FEDERATED,
    GRAPH_APP,
    GRAPH_SECRET,
    NATIVE_APP,
    NATIVE_REDIRECT,
    OLD_SECRET,
    Browser,
    Certificate,
    cert_mailbox,
    configure,
    interaction,
    mailbox,
)
from tests.support.proxy import PROXY_PASSWORD, PROXY_USER, Proxy


def state_of(store: Store, name: str) -> tuple[str, str | None]:
    with store.read() as repo:
        record = repo.get_mailbox(name)
    return record.auth_state, record.auth_detail


def test_client_credentials_then_cached_then_renewed_before_expiry(
    store: Store, idp: IdentityProvider
) -> None:
    configure(
        store,
        idp.base_url,
        mailbox("app", "client_credentials", client_id=GRAPH_APP, client_secret=GRAPH_SECRET),
    )
    idp.reset_counters()
    clock = [dt.datetime.now(dt.UTC)]
    manager = TokenManager(store, now=lambda: clock[0])
    result = authorize(manager, "app", interaction())
    assert result.message.startswith("Login successful")
    assert state_of(store, "app") == ("authorized", None)
    token = manager.access_token("app")
    assert manager.access_token("app") == token
    assert len(idp.token_requests) == 1  # the Authorize action's; then from the store
    clock[0] += dt.timedelta(seconds=3599 - 200)  # inside the renewal margin
    renewed = manager.access_token("app")
    assert renewed != token
    assert [r["grant_type"] for r in idp.token_requests] == ["client_credentials"] * 2


def test_certificate_credentials(
    store: Store, idp: IdentityProvider, certificate: Certificate
) -> None:
    cert_mailbox(store, idp, certificate)
    result = authorize(TokenManager(store), "cert", interaction())
    assert result.message.startswith("Login successful")


@pytest.mark.parametrize(
    ("secret", "code", "fix"),
    [
        ("wrong-secret", "AADSTS7000215", "Value"),
        (OLD_SECRET, "AADSTS7000222", "new client secret"),
    ],
)
def test_client_secret_refusals_say_what_to_fix(
    store: Store, idp: IdentityProvider, secret: str, code: str, fix: str
) -> None:
    configure(
        store,
        idp.base_url,
        mailbox("app", "client_credentials", client_id=GRAPH_APP, client_secret=secret),
    )
    with pytest.raises(AuthError) as caught:
        authorize(TokenManager(store), "app", interaction())
    assert caught.value.code == code
    assert fix in str(caught.value)
    state, detail = state_of(store, "app")
    assert state == "error"
    assert detail is not None
    assert fix in detail
    # Storing the right secret clears the refusal; the next Authorize works.
    edit_item(store, "mailbox", "app", {"oauth.client_secret": GRAPH_SECRET}, [], {})
    assert state_of(store, "app")[0] == "not_authorized"
    authorize(TokenManager(store), "app", interaction())
    assert state_of(store, "app")[0] == "authorized"


def test_password_grant_and_the_password_change(store: Store, idp: IdentityProvider) -> None:
    configure(
        store,
        idp.base_url,
        mailbox("ropc", "password", client_id=NATIVE_APP, password=ANNA_PASSWORD),
    )
    clock = [dt.datetime.now(dt.UTC)]
    manager = TokenManager(store, now=lambda: clock[0])
    assert authorize(manager, "ropc", interaction()).account == ANNA
    new_password = "Anna-Changed-2!"
    idp.change_password(ANNA, new_password)
    try:
        clock[0] += dt.timedelta(hours=2)
        with pytest.raises(PasswordUpdateRequired) as caught:
            manager.access_token("ropc")
        assert "mailintake mailboxes edit ropc --ask oauth.password" in str(caught.value)
        assert state_of(store, "ropc")[0] == "password_update_required"
        # The seed: with the password grant, update the stored password.
        edit_item(store, "mailbox", "ropc", {"oauth.password": new_password}, [], {})
        assert manager.access_token("ropc")
        assert state_of(store, "ropc")[0] == "authorized"
    finally:
        idp.change_password(ANNA, ANNA_PASSWORD)


@pytest.mark.parametrize(
    ("user", "password", "why"),
    [(BORIS, "Boris-Password-2!", "multi-factor"), (FEDERATED, "Fed-Password-3!", "federated")],
)
def test_password_grant_cannot_work_for_mfa_or_federated_accounts(
    store: Store, idp: IdentityProvider, user: str, password: str, why: str
) -> None:
    configure(
        store,
        idp.base_url,
        mailbox("ropc", "password", client_id=NATIVE_APP, username=user, password=password),
    )
    with pytest.raises(AuthError) as caught:
        authorize(TokenManager(store), "ropc", interaction())
    message = str(caught.value)
    assert why in message.lower()
    assert "authorization_code" in message
    assert state_of(store, "ropc")[0] == "error"


def test_authorization_code_on_a_loopback_port_then_password_change(
    store: Store, idp: IdentityProvider
) -> None:
    configure(
        store,
        idp.base_url,
        mailbox(
            "user", "authorization_code", client_id=NATIVE_APP, redirect_uri="http://localhost/"
        ),
    )
    idp.reset_counters()
    clock = [dt.datetime.now(dt.UTC)]
    manager = TokenManager(store, now=lambda: clock[0])
    browser = Browser(ANNA, ANNA_PASSWORD)
    result = authorize(manager, "user", interaction(browser))
    assert result.account == ANNA
    assert result.refresh_token
    assert browser.final_url is not None
    assert browser.final_url.startswith("http://localhost:")  # a port chosen at random
    with store.read() as repo:
        first_refresh = repo.grant("user").refresh_token  # type: ignore[union-attr]
    # Expired: the refresh token renews it, and the newest refresh token is stored.
    clock[0] += dt.timedelta(hours=2)
    assert manager.access_token("user")
    with store.read() as repo:
        assert repo.grant("user").refresh_token != first_refresh  # type: ignore[union-attr]
    assert [r["grant_type"] for r in idp.token_requests] == ["authorization_code", "refresh_token"]
    # The seed: after a password change, authorize again.
    idp.change_password(ANNA, "Anna-Changed-3!")
    try:
        clock[0] += dt.timedelta(hours=2)
        with pytest.raises(AuthorizationRequired) as caught:
            manager.access_token("user")
        assert caught.value.code == "AADSTS50173"
        assert "mailintake authorize user" in str(caught.value)
        assert state_of(store, "user")[0] == "reauthorization_required"
        asked = len(idp.token_requests)
        with pytest.raises(AuthorizationRequired):  # it stays so, without asking again
            manager.access_token("user")
        assert len(idp.token_requests) == asked
        assert state_of(store, "user")[0] == "reauthorization_required"
        authorize(manager, "user", interaction(Browser(ANNA, "Anna-Changed-3!")))
        assert state_of(store, "user")[0] == "authorized"
        assert manager.access_token("user")
    finally:
        idp.change_password(ANNA, ANNA_PASSWORD)


def test_authorization_code_by_pasting_the_final_url(store: Store, idp: IdentityProvider) -> None:
    configure(
        store,
        idp.base_url,
        mailbox("paste", "authorization_code", client_id=NATIVE_APP, redirect_uri=NATIVE_REDIRECT),
    )
    browser = Browser(ANNA, ANNA_PASSWORD)
    pasted: list[str] = []

    def open_url(url: str) -> None:
        pasted.append(browser.sign_in(url, follow_loopback=False))

    flow = Interaction(
        show=lambda _t: None, open_url=open_url, ask=lambda _p: pasted.pop(0), timeout=30
    )
    assert authorize(TokenManager(store), "paste", flow).account == ANNA
    assert browser.final_url is not None
    assert browser.final_url.startswith(NATIVE_REDIRECT)


def test_authorization_code_declined_consent_is_explained(
    store: Store, idp: IdentityProvider
) -> None:
    configure(
        store,
        idp.base_url,
        mailbox(
            "user",
            "authorization_code",
            client_id=NATIVE_APP,
            redirect_uri="http://localhost/",
            username="carla@contoso.onmicrosoft.com",
        ),
    )
    with pytest.raises(AuthError) as caught:
        authorize(
            TokenManager(store),
            "user",
            interaction(
                Browser("carla@contoso.onmicrosoft.com", "Carla-Password-4!", consent="decline")
            ),
        )
    assert "consent" in str(caught.value).lower()


def test_device_code(store: Store, idp: IdentityProvider) -> None:
    configure(store, idp.base_url, mailbox("device", "device_code", client_id=NATIVE_APP))
    shown: list[str] = []
    browser = Browser(ANNA, ANNA_PASSWORD)

    def show(text: str) -> None:
        shown.append(text)

    def open_url(url: str) -> None:
        code = next(t for t in shown if "code" in t).split("code ")[-1].split()[0]
        threading.Thread(
            target=browser.device_sign_in, args=(url, code.strip(".")), daemon=True
        ).start()

    result = authorize(
        TokenManager(store),
        "device",
        Interaction(show=show, open_url=open_url, ask=lambda _p: "", timeout=30),
    )
    assert result.account == ANNA
    assert result.refresh_token


def _proxy_fields(proxy: Proxy, password: str = PROXY_PASSWORD) -> dict[str, str]:
    return {"address": proxy.url, "username": PROXY_USER, "password": password}


def test_every_grant_through_an_authenticating_proxy(
    store: Store, idp: IdentityProvider, proxy: Proxy
) -> None:
    through = _proxy_fields(proxy)
    configure(
        store,
        idp.base_url,
        mailbox("app", "client_credentials", client_id=GRAPH_APP, client_secret=GRAPH_SECRET,
                proxy=through),
        mailbox("ropc", "password", client_id=NATIVE_APP, password=ANNA_PASSWORD, proxy=through),
        mailbox("user", "authorization_code", client_id=NATIVE_APP,
                redirect_uri="http://localhost/", proxy=through),
        mailbox("device", "device_code", client_id=NATIVE_APP, proxy=through),
    )  # fmt: skip
    idp.reset_counters()
    before = proxy.requests_seen("/oauth2/v2.0/token")
    clock = [dt.datetime.now(dt.UTC)]
    manager = TokenManager(store, now=lambda: clock[0])
    authorize(manager, "app", interaction())
    authorize(manager, "ropc", interaction())
    authorize(manager, "user", interaction(Browser(ANNA, ANNA_PASSWORD)))
    clock[0] += dt.timedelta(hours=2)
    manager.access_token("user")  # a refresh, through the proxy too
    shown: list[str] = []

    def enter_code(url: str) -> None:
        code = shown[-1].split("enter the code ")[1].split()[0]
        threading.Thread(
            target=Browser(ANNA, ANNA_PASSWORD).device_sign_in, args=(url, code), daemon=True
        ).start()

    flow = Interaction(show=shown.append, open_url=enter_code, ask=lambda _p: "", timeout=30)
    authorize(manager, "device", flow)
    grants = [r["grant_type"] for r in idp.token_requests]
    assert grants[:4] == ["client_credentials", "password", "authorization_code", "refresh_token"]
    assert set(grants[4:]) == {"urn:ietf:params:oauth:grant-type:device_code"}
    assert proxy.requests_seen("/oauth2/v2.0/token") == before + len(grants)
    assert proxy.requests_seen("/oauth2/v2.0/devicecode") >= 1
    assert all(r["via"] and "tinyproxy" in r["via"] for r in idp.token_requests)


def test_a_wrong_proxy_password_says_so(store: Store, idp: IdentityProvider, proxy: Proxy) -> None:
    configure(
        store,
        idp.base_url,
        mailbox(
            "app",
            "client_credentials",
            client_id=GRAPH_APP,
            client_secret=GRAPH_SECRET,
            proxy=_proxy_fields(proxy, "wrong-proxy-password"),
        ),
    )
    with pytest.raises(NetworkError) as caught:
        authorize(TokenManager(store), "app", interaction())
    message = str(caught.value)
    assert message.startswith("app: token request to")
    assert "refused the proxy user name or password" in message
    assert "wrong-proxy-password" not in message


RENEW = """
import sys
from mailintake.oauth.tokens import TokenManager
from mailintake.runtime import open_store
from mailintake.settings import Settings
print(TokenManager(open_store(Settings())).access_token("app"))
"""


def test_two_processes_renew_an_expired_token_once(
    store: Store, idp: IdentityProvider, home: Path, database_url: str
) -> None:
    configure(
        store,
        idp.base_url,
        mailbox("app", "client_credentials", client_id=GRAPH_APP, client_secret=GRAPH_SECRET),
    )
    manager = TokenManager(store)
    authorize(manager, "app", interaction())
    with store.begin() as repo:  # the application's stored token has expired
        auth = load_auth(repo, "app")
        old = stored_access(repo, auth)
        assert old is not None
        app_tokens.write(
            repo.conn,
            repo.box,
            auth.app_key(repo.box),
            GRAPH_APP,
            replace(old, expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)),
        )
    idp.reset_counters()
    idp.token_delay = 1.0  # both processes are inside the renewal at once
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILINTAKE_")}
    env.update(MAILINTAKE_HOME=str(home), MAILINTAKE_DATABASE_URL=database_url)
    try:
        runs = [
            subprocess.Popen(
                [sys.executable, "-c", RENEW],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        outputs = [run.communicate(timeout=60) for run in runs]
    finally:
        idp.token_delay = 0.0
    assert [run.returncode for run in runs] == [0, 0], outputs
    tokens = {out.strip() for out, _err in outputs}
    assert len(tokens) == 1  # both got the one renewed token
    assert old.token not in tokens
    assert len(idp.token_requests) == 1
