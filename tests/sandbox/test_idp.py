"""The sandbox identity provider itself: discovery, introspection, user realm, device-code
polling names, PKCE, and that it starts alone."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import time
from collections.abc import Iterator
from urllib.parse import urljoin

import httpx2
import pytest

from sandbox.idp import App, IdentityProvider, User

CLIENT = "c1"
TENANT = "0b6a6d2e-1234-4c1e-9b5e-123456789abc"


@pytest.fixture(scope="module")
def idp() -> Iterator[IdentityProvider]:
    provider = IdentityProvider(tenant_id=TENANT, device_interval=1, introspection_open=True)
    provider.add_app(
        App(
            client_id=CLIENT,
            redirect_uris={"http://localhost/": "public"},
            allow_public_client=True,
        )
    )
    provider.add_user(
        User(username="u@contoso.onmicrosoft.com", password="pw-1", consented_apps={CLIENT})
    )
    provider.add_user(User(username="f@contoso.onmicrosoft.com", password="pw-2", federated=True))
    with provider.serve():
        yield provider


def token_url(idp: IdentityProvider, tenant: str = TENANT) -> str:
    return f"{idp.base_url}/{tenant}/oauth2/v2.0/token"


def test_discovery_and_an_unknown_tenant(idp: IdentityProvider) -> None:
    found = httpx2.get(f"{idp.base_url}/{TENANT}/v2.0/.well-known/openid-configuration").json()
    assert found["token_endpoint"] == token_url(idp)
    assert found["issuer"] == f"{idp.base_url}/{TENANT}/v2.0"
    answer = httpx2.post(token_url(idp, "nope.example"), data={"grant_type": "password"})
    assert answer.status_code == 400
    assert answer.json()["error_codes"] == [90002]
    assert answer.json()["error_description"].startswith("AADSTS90002: ")


def test_password_grant_introspection_and_refresh_rotation(idp: IdentityProvider) -> None:
    answer = httpx2.post(
        token_url(idp),
        data={
            "grant_type": "password",
            "client_id": CLIENT,
            "username": "u@contoso.onmicrosoft.com",
            "password": "pw-1",
            "scope": "https://outlook.office.com/IMAP.AccessAsUser.All offline_access",
        },
    ).json()
    seen = httpx2.post(f"{idp.base_url}/introspect", data={"token": answer["access_token"]})
    assert seen.json()["active"] is True
    assert seen.json()["username"] == "u@contoso.onmicrosoft.com"
    assert seen.json()["aud"] == "https://outlook.office.com"
    renewed = httpx2.post(
        token_url(idp),
        data={
            "grant_type": "refresh_token",
            "client_id": CLIENT,
            "refresh_token": answer["refresh_token"],
        },
    ).json()
    assert renewed["refresh_token"] != answer["refresh_token"]
    gone = httpx2.post(f"{idp.base_url}/introspect", data={"token": "nope"})
    assert gone.json() == {"active": False}


def test_user_realm(idp: IdentityProvider) -> None:
    realm = httpx2.get(
        f"{idp.base_url}/common/userrealm/f@contoso.onmicrosoft.com", params={"api-version": "1.0"}
    ).json()
    assert realm["account_type"] == "Federated"
    managed = httpx2.get(f"{idp.base_url}/common/userrealm/u@contoso.onmicrosoft.com").json()
    assert managed["account_type"] == "Managed"


def test_device_code_polling_uses_entras_names(idp: IdentityProvider) -> None:
    started = httpx2.post(
        f"{idp.base_url}/{TENANT}/oauth2/v2.0/devicecode",
        data={"client_id": CLIENT, "scope": "Mail.Read offline_access"},
    ).json()
    assert "verification_uri_complete" not in started
    poll = {
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
        "client_id": CLIENT,
        "device_code": started["device_code"],
    }
    assert httpx2.post(token_url(idp), data=poll).json()["error"] == "authorization_pending"
    idp.devices[started["device_code"]].approved = False
    idp.devices[started["device_code"]].username = "u@contoso.onmicrosoft.com"
    assert httpx2.post(token_url(idp), data=poll).json()["error"] == "authorization_declined"
    wrong = dict(poll, device_code="nope")
    assert httpx2.post(token_url(idp), data=wrong).json()["error"] == "bad_verification_code"


def test_pkce_mismatch_is_aadsts501481(idp: IdentityProvider) -> None:
    verifier = "v" * 64
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    with httpx2.Client(follow_redirects=False) as client:
        url = f"{idp.base_url}/{TENANT}/oauth2/v2.0/authorize"
        params = {
            "client_id": CLIENT,
            "response_type": "code",
            "redirect_uri": "http://localhost:5000/",
            "scope": "Mail.Read",
            "state": "s",
            "code_challenge": challenge.rstrip(b"=").decode(),
            "code_challenge_method": "S256",
        }
        page = client.post(
            url, params=params, data={"username": "u@contoso.onmicrosoft.com", "password": "pw-1"}
        )
        assert page.status_code == 302
        answer = client.get(urljoin(str(page.url), page.headers["location"]))
        code = answer.headers["location"].split("code=")[1].split("&")[0]
    refused = httpx2.post(
        token_url(idp),
        data={
            "grant_type": "authorization_code",
            "client_id": CLIENT,
            "code": code,
            "redirect_uri": "http://localhost:5000/",
            "code_verifier": "w" * 64,
        },
    )
    assert refused.json()["error_codes"] == [501481]


def test_runs_alone() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox.idp", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("identity provider: http://127.0.0.1:")
        base = first.split()[2]
        deadline = time.monotonic() + 10
        while True:
            try:
                found = httpx2.get(f"{base}/organizations/v2.0/.well-known/openid-configuration")
                break
            except httpx2.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert found.status_code == 200
    finally:
        process.terminate()
        process.communicate(timeout=10)
