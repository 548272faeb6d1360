"""The sandbox identity provider itself, over real HTTP: discovery, every grant, the login,
consent and device pages, refresh rotation and revocation, Entra's AADSTS errors in Entra's
JSON shape, introspection, the user realm, and that it starts alone."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx2
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from sandbox import http_clients
from sandbox.idp import App, IdentityProvider, User
from sandbox.idp.config import load_config
from tests.support.certs import pem_certificate, rsa_key, self_signed

TENANT = "0b6a6d2e-1234-4c1e-9b5e-123456789abc"
DOMAIN = "contoso.onmicrosoft.com"
PUBLIC = "aaaaaaaa-0000-0000-0000-000000000001"  # desktop app, public client flows on
WEB = "aaaaaaaa-0000-0000-0000-000000000002"  # web app / daemon with secrets and a cert
WEB_SECRET, OLD_SECRET, SECRET_ID = "web-secret-value", "old-secret-value", "1f2e3d4c-secret-id"
WEB_REDIRECT = "https://app.example.com/cb"
OUTLOOK = "https://outlook.office365.com"
IMAP_SCOPE = "https://outlook.office.com/IMAP.AccessAsUser.All"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
KEY = rsa_key()
CERT = self_signed(KEY)
ANNA, PASSWORD = f"anna@{DOMAIN}", "Anna-Password-1!"


@pytest.fixture(scope="module")
def idp() -> Iterator[IdentityProvider]:
    provider = IdentityProvider(tenant_id=TENANT, domain=DOMAIN, device_interval=1)
    provider.add_app(
        App(
            client_id=PUBLIC,
            name="desktop",
            redirect_uris={"http://localhost/": "public"},
            allow_public_client=True,
        )
    )
    provider.add_app(
        App(
            client_id=WEB,
            name="web",
            secrets={WEB_SECRET: None, OLD_SECRET: datetime.now(UTC) - timedelta(days=1)},
            secret_ids={SECRET_ID: WEB_SECRET},
            certificates=[pem_certificate(CERT).decode()],
            redirect_uris={WEB_REDIRECT: "web"},
            application_permissions={OUTLOOK: ["IMAP.AccessAsApp", "POP.AccessAsApp"]},
        )
    )
    both = {PUBLIC, WEB}
    provider.add_user(User(username=ANNA, password=PASSWORD, consented_apps=set(both)))
    for name, flags in {
        "mfa": {"mfa": True},
        "fed": {"federated": True},
        "expired": {"password_expired": True},
        "blocked": {"blocked_by_conditional_access": True},
    }.items():
        user = User(username=f"{name}@{DOMAIN}", password=PASSWORD, consented_apps=set(both))
        for flag, value in flags.items():
            setattr(user, flag, value)
        provider.add_user(user)
    provider.add_user(User(username=f"carla@{DOMAIN}", password=PASSWORD))  # no consent
    with provider.serve():
        yield provider


def fresh_user(idp: IdentityProvider, **flags: Any) -> str:
    username = f"u{uuid.uuid4().hex[:8]}@{DOMAIN}"
    idp.add_user(User(username=username, password=PASSWORD, **flags))
    return username


def token(
    idp: IdentityProvider, tenant: str = TENANT, auth: tuple[str, str] | None = None, **data: str
) -> httpx2.Response:
    url = f"{idp.base_url}/{tenant}/oauth2/v2.0/token"
    return http_clients.post(url, data=data, auth=auth)


def ropc(
    idp: IdentityProvider, username: str = ANNA, tenant: str = TENANT, **data: str
) -> httpx2.Response:
    form = {"grant_type": "password", "client_id": PUBLIC, "username": username}
    form.update({"password": PASSWORD, "scope": f"{IMAP_SCOPE} offline_access", **data})
    return token(idp, tenant, **form)


def assert_entra(answer: httpx2.Response, error: str, code: int, status: int = 400) -> None:
    """Entra's error shape (oauth-facts §1.9)."""
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["error"] == error
    assert body["error_codes"] == [code]
    text = body["error_description"]
    assert text.startswith(f"AADSTS{code}: ")
    assert f"\r\nTrace ID: {body['trace_id']}\r\nCorrelation ID: {body['correlation_id']}" in text
    assert f"\r\nTimestamp: {body['timestamp']}" in text
    assert body["error_uri"] == f"https://login.microsoftonline.com/error?code={code}"


# --- the pages, driven like a browser -----------------------------------------------------


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: dict[str, dict[str, Any]] = {}
        self._form: dict[str, Any] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._form = {"action": a.get("action", ""), "fields": {}}
            self.forms[a.get("id", "")] = self._form
        elif tag == "input" and self._form is not None:
            self._form["fields"][a["name"]] = a.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None


def forms(page: str) -> dict[str, dict[str, Any]]:
    parser = _Forms()
    parser.feed(page)
    return parser.forms


def submit(
    client: httpx2.Client, answer: httpx2.Response, form_id: str, **extra: str
) -> httpx2.Response:
    form = forms(answer.text)[form_id]
    return client.post(urljoin(str(answer.url), form["action"]), data={**form["fields"], **extra})


def browse(
    client: httpx2.Client,
    answer: httpx2.Response,
    username: str,
    consent: str = "accept",
    seen: list[str] | None = None,
) -> httpx2.Response:
    """Sign in and answer consent until the IdP leaves its pages: the redirect to the app,
    or (device flow) the final page. The forms met are added to ``seen``."""
    for _ in range(8):
        if answer.is_redirect:
            location = urljoin(str(answer.url), answer.headers["location"])
            if not location.startswith(str(client.base_url)):
                return answer
            answer = client.get(location)
            continue
        found = forms(answer.text)
        if seen is not None:
            seen.extend(found)
        if "login" in found:
            answer = submit(client, answer, "login", username=username, password=PASSWORD)
        elif "consent" in found:
            answer = submit(client, answer, "consent", consent=consent)
        else:
            return answer
    raise AssertionError("sign-in did not finish")


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def pkce() -> tuple[str, str]:
    verifier = base64.urlsafe_b64encode(uuid.uuid4().bytes * 3).rstrip(b"=").decode()
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorize(
    idp: IdentityProvider,
    username: str,
    *,
    client_id: str = PUBLIC,
    consent: str = "accept",
    **params: str,
) -> tuple[dict[str, list[str]], list[str]]:
    """The redirect's query parameters, and the ids of the forms met on the way."""
    query = {
        "client_id": client_id,
        "response_type": "code",
        "redirect_uri": "http://localhost:53123/",
        "scope": f"{IMAP_SCOPE} offline_access openid",
        "state": "st-1",
        **params,
    }
    with http_clients.Client(base_url=idp.base_url, follow_redirects=False) as client:
        first = client.get(f"/{TENANT}/oauth2/v2.0/authorize", params=query)
        met: list[str] = []
        last = browse(client, first, username, consent, met)
        assert last.status_code == 302, last.text
        location = last.headers["location"]
    assert location.startswith(query["redirect_uri"])
    return parse_qs(urlsplit(location).query), met


# --- discovery and tenants ----------------------------------------------------------------


def test_discovery_keys_and_an_unknown_tenant(idp: IdentityProvider) -> None:
    for tenant in (TENANT, DOMAIN, "organizations", "common"):
        url = f"{idp.base_url}/{tenant}/v2.0/.well-known/openid-configuration"
        found = http_clients.get(url).json()
        assert found["issuer"] == f"{idp.base_url}/{TENANT}/v2.0"
        assert found["token_endpoint"] == f"{idp.base_url}/{tenant}/oauth2/v2.0/token"
        assert found["authorization_endpoint"].endswith(f"/{tenant}/oauth2/v2.0/authorize")
        assert found["device_authorization_endpoint"].endswith("/oauth2/v2.0/devicecode")
        assert found["introspection_endpoint"] == f"{idp.base_url}/introspect"
    assert http_clients.get(found["jwks_uri"]).json()["keys"][0]["kty"] == "RSA"
    unknown = token(idp, "nope.example", grant_type="password")
    assert_entra(unknown, "invalid_request", 90002)
    bad = http_clients.get(f"{idp.base_url}/fabrikam.com/v2.0/.well-known/openid-configuration")
    assert_entra(bad, "invalid_request", 90002)


# --- authorization code + PKCE through the pages -----------------------------------------


def test_code_flow_with_pkce_login_and_consent(idp: IdentityProvider) -> None:
    username = fresh_user(idp)
    verifier, challenge = pkce()
    params = {"code_challenge": challenge, "code_challenge_method": "S256"}
    with http_clients.Client(base_url=idp.base_url, follow_redirects=False) as client:
        url = f"/{TENANT}/oauth2/v2.0/authorize"
        query = {
            "client_id": PUBLIC,
            "response_type": "code",
            "redirect_uri": "http://localhost:53123/",  # registered as http://localhost/
            "scope": f"{IMAP_SCOPE} offline_access openid",
            "state": "st-1",
            "login_hint": username,
            **params,
        }
        login = client.get(url, params=query)
        assert forms(login.text)["login"]["fields"]["username"] == username  # login_hint
        wrong = submit(client, login, "login", password="wrong")
        assert "AADSTS50126" in wrong.text
        assert "login" in forms(wrong.text)
        signed_in = client.get(
            submit(client, wrong, "login", password=PASSWORD).headers["location"]
        )
        assert "consent" in forms(signed_in.text)  # not consented yet
        done = submit(client, signed_in, "consent", consent="accept")
    assert done.status_code == 302
    answer = parse_qs(urlsplit(done.headers["location"]).query)
    assert answer["state"] == ["st-1"]
    redeem = {
        "grant_type": "authorization_code",
        "client_id": PUBLIC,
        "code": answer["code"][0],
        "redirect_uri": "http://localhost:53123/",
    }
    tokens = token(idp, **redeem, code_verifier=verifier).json()
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 3599
    assert tokens["scope"] == IMAP_SCOPE
    assert tokens["refresh_token"]
    header, claims, signature = tokens["id_token"].split(".")
    decoded = json.loads(unb64(claims))
    assert json.loads(unb64(header))["alg"] == "RS256"
    jwk = http_clients.get(f"{idp.base_url}/{TENANT}/discovery/v2.0/keys").json()["keys"][0]
    numbers = rsa.RSAPublicNumbers(int.from_bytes(unb64(jwk["e"])), int.from_bytes(unb64(jwk["n"])))
    signed = f"{header}.{claims}".encode()
    numbers.public_key().verify(unb64(signature), signed, padding.PKCS1v15(), hashes.SHA256())
    assert decoded["preferred_username"] == username
    assert decoded["aud"] == PUBLIC
    # Consent is remembered: the second sign-in goes straight back to the app.
    again, met = authorize(idp, username)
    assert "code" in again
    assert met == ["login"]


@pytest.mark.parametrize("method", ["S256", "plain"])
def test_code_verifier_missing_or_wrong_is_501481(idp: IdentityProvider, method: str) -> None:
    verifier, challenge = pkce()
    sent = challenge if method == "S256" else verifier
    for bad in (None, verifier + "x"):
        answer, _ = authorize(
            idp, ANNA, code_challenge=sent, code_challenge_method=method, scope=IMAP_SCOPE
        )
        redeem = {
            "grant_type": "authorization_code",
            "client_id": PUBLIC,
            "code": answer["code"][0],
            "redirect_uri": "http://localhost:53123/",
        }
        if bad is not None:
            redeem["code_verifier"] = bad
        assert_entra(token(idp, **redeem), "invalid_grant", 501481)
    answer, _ = authorize(idp, ANNA, code_challenge=sent, code_challenge_method=method)
    redeem.update(code=answer["code"][0], code_verifier=verifier)
    assert token(idp, **redeem).status_code == 200


def test_consent_declined_and_mfa_user_signs_in_interactively(idp: IdentityProvider) -> None:
    declined, _ = authorize(idp, f"carla@{DOMAIN}", consent="decline")
    assert declined["error"] == ["access_denied"]
    assert declined["error_description"][0].startswith("AADSTS65004: ")
    assert declined["state"] == ["st-1"]
    assert "code" in authorize(idp, f"mfa@{DOMAIN}")[0]  # interactive sign-in satisfies MFA


def test_authorize_error_pages(idp: IdentityProvider) -> None:
    url = f"{idp.base_url}/{TENANT}/oauth2/v2.0/authorize"
    base = {"response_type": "code", "scope": "Mail.Read"}
    unknown = http_clients.get(
        url, params={**base, "client_id": "nope", "redirect_uri": WEB_REDIRECT}
    )
    assert unknown.status_code == 400
    assert "AADSTS700016" in unknown.text
    for redirect_uri in ("https://app.example.com:8443/cb", "http://localhost/other", "x:/"):
        page = http_clients.get(
            url, params={**base, "client_id": WEB, "redirect_uri": redirect_uri}
        )
        assert page.status_code == 400
        assert "AADSTS50011" in page.text


def test_web_platform_needs_a_secret_desktop_forbids_one(idp: IdentityProvider) -> None:
    answer, _ = authorize(idp, ANNA, client_id=WEB, redirect_uri=WEB_REDIRECT)
    redeem = {
        "grant_type": "authorization_code",
        "client_id": WEB,
        "code": answer["code"][0],
        "redirect_uri": WEB_REDIRECT,
    }
    assert_entra(token(idp, **redeem), "invalid_client", 7000218, 401)
    redeem.pop("client_id")
    assert token(idp, auth=(WEB, WEB_SECRET), **redeem).status_code == 200  # HTTP Basic
    assert_entra(ropc(idp, client_secret="x"), "invalid_client", 700025, 401)
    refused = ropc(idp, client_id=WEB)  # "Allow public client flows" is off
    assert_entra(refused, "invalid_client", 7000218, 401)
    assert ropc(idp, client_id=WEB, client_secret=WEB_SECRET).status_code == 200


# --- refresh tokens -----------------------------------------------------------------------


def test_refresh_tokens_rotate_and_span_resources(idp: IdentityProvider) -> None:
    first = ropc(idp).json()
    refresh = {"grant_type": "refresh_token", "client_id": PUBLIC}
    second = token(idp, **refresh, refresh_token=first["refresh_token"]).json()
    assert second["refresh_token"] != first["refresh_token"]
    old_again = token(idp, **refresh, refresh_token=first["refresh_token"])
    assert old_again.status_code == 200  # Entra does not revoke the used one
    graph = token(idp, **refresh, refresh_token=second["refresh_token"], scope="Mail.Read")
    assert graph.json()["scope"] == "Mail.Read"
    assert "refresh_token" in graph.json()
    assert idp.access_tokens[graph.json()["access_token"]].resource == "https://graph.microsoft.com"
    assert "refresh_token" not in ropc(idp, scope=IMAP_SCOPE).json()  # no offline_access
    mixed = token(
        idp, **refresh, refresh_token=second["refresh_token"], scope=f"Mail.Read {IMAP_SCOPE}"
    )
    assert_entra(mixed, "invalid_scope", 70011)


def test_password_change_and_inactivity_end_refresh_tokens(idp: IdentityProvider) -> None:
    refresh = {"grant_type": "refresh_token", "client_id": PUBLIC}
    changed, idle = (
        fresh_user(idp, consented_apps={PUBLIC}),
        fresh_user(idp, consented_apps={PUBLIC}),
    )
    rt = ropc(idp, changed).json()["refresh_token"]
    answer = http_clients.post(
        f"{idp.base_url}/_sandbox/users/{changed}/password", json={"password": PASSWORD}
    )
    assert answer.status_code == 200
    assert_entra(token(idp, **refresh, refresh_token=rt), "invalid_grant", 50173)
    idle_rt = ropc(idp, idle).json()["refresh_token"]
    idp.expire_refresh_tokens(idle)
    assert_entra(token(idp, **refresh, refresh_token=idle_rt), "invalid_grant", 700082)
    assert ropc(idp, idle).status_code == 200  # signing in again works


# --- ROPC ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("username", "password", "tenant", "error", "code"),
    [
        (ANNA, "wrong", TENANT, "invalid_grant", 50126),
        (f"fed@{DOMAIN}", PASSWORD, TENANT, "invalid_grant", 50126),
        (f"mfa@{DOMAIN}", PASSWORD, TENANT, "invalid_grant", 50076),
        (f"carla@{DOMAIN}", PASSWORD, TENANT, "invalid_grant", 65001),
        (f"expired@{DOMAIN}", PASSWORD, TENANT, "invalid_grant", 50055),
        (f"blocked@{DOMAIN}", PASSWORD, TENANT, "invalid_grant", 53003),
        (f"nobody@{DOMAIN}", PASSWORD, TENANT, "invalid_grant", 50034),
        (ANNA, PASSWORD, "common", "invalid_request", 9001023),
        (ANNA, PASSWORD, "consumers", "invalid_request", 9001023),
    ],
)
def test_ropc_errors(
    idp: IdentityProvider, username: str, password: str, tenant: str, error: str, code: int
) -> None:
    form = {"grant_type": "password", "client_id": PUBLIC, "scope": IMAP_SCOPE}
    answer = token(idp, tenant, username=username, password=password, **form)
    assert_entra(answer, error, code)


def test_ropc_success_and_a_locked_account(idp: IdentityProvider) -> None:
    answer = ropc(idp, scope=f"{IMAP_SCOPE} offline_access openid")
    assert answer.status_code == 200
    assert {"access_token", "refresh_token", "id_token", "scope"} <= set(answer.json())
    assert ropc(idp, tenant="organizations").status_code == 200
    locked = fresh_user(idp, consented_apps={PUBLIC})
    idp.lock_user(locked)
    assert_entra(ropc(idp, locked), "invalid_grant", 50053)
    assert_entra(ropc(idp, scope=f"Mail.Read {IMAP_SCOPE}"), "invalid_scope", 70011)


# --- client credentials and client authentication ----------------------------------------


def test_client_credentials(idp: IdentityProvider) -> None:
    app_only = {"grant_type": "client_credentials", "scope": f"{OUTLOOK}/.default"}
    body = token(idp, client_id=WEB, client_secret=WEB_SECRET, **app_only).json()
    assert set(body) >= {"access_token", "expires_in", "token_type"}
    assert "refresh_token" not in body
    record = idp.access_tokens[body["access_token"]]
    assert (record.username, record.resource) == (None, OUTLOOK)
    assert record.roles == ["IMAP.AccessAsApp", "POP.AccessAsApp"]
    assert token(idp, DOMAIN, auth=(WEB, WEB_SECRET), **app_only).status_code == 200
    cases: list[tuple[dict[str, str], str, str, int, int]] = [
        ({"client_id": WEB, "client_secret": "nope"}, TENANT, "invalid_client", 7000215, 401),
        ({"client_id": WEB, "client_secret": OLD_SECRET}, TENANT, "invalid_client", 7000222, 401),
        ({"client_id": WEB}, TENANT, "invalid_client", 7000218, 401),
        ({"client_id": "nope", "client_secret": "x"}, TENANT, "unauthorized_client", 700016, 400),
        ({"client_id": WEB, "client_secret": WEB_SECRET}, "organizations", "invalid_request",
         50059, 400),
    ]  # fmt: skip
    for credentials, tenant, error, code, status in cases:
        assert_entra(token(idp, tenant, **credentials, **app_only), error, code, status)
    by_id = token(idp, client_id=WEB, client_secret=SECRET_ID, **app_only)
    assert_entra(by_id, "invalid_client", 7000215, 401)
    assert "client secret value, not the client secret ID" in by_id.json()["error_description"]
    secret = {"client_id": WEB, "client_secret": WEB_SECRET, "grant_type": "client_credentials"}
    mixed = token(idp, **secret, scope=f"{OUTLOOK}/.default https://graph.microsoft.com/.default")
    assert_entra(mixed, "invalid_scope", 70011)
    assert token(idp, **secret, scope="Mail.Read").json()["error"] == "invalid_scope"


def assertion(
    alg: str = "PS256",
    *,
    key: rsa.RSAPrivateKey = KEY,
    aud: str | list[str] = "",
    age: int = 0,
) -> str:
    fingerprint = CERT.fingerprint(hashes.SHA256() if alg == "PS256" else hashes.SHA1())  # noqa: S303
    thumb = base64.urlsafe_b64encode(fingerprint).rstrip(b"=").decode()
    header = {"alg": alg, "typ": "JWT", ("x5t#S256" if alg == "PS256" else "x5t"): thumb}
    now = int(time.time()) - age
    claims = {"aud": aud, "iss": WEB, "sub": WEB, "jti": str(uuid.uuid4())}
    claims.update(nbf=now, iat=now, exp=now + 600)

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    signing_input = f"{part(header)}.{part(claims)}".encode()
    pad: padding.AsymmetricPadding = padding.PKCS1v15()
    if alg == "PS256":
        pad = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    signature = key.sign(signing_input, pad, hashes.SHA256())
    return f"{signing_input.decode()}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


def test_certificate_credentials(idp: IdentityProvider) -> None:
    aud = f"{idp.base_url}/{TENANT}/oauth2/v2.0/token"
    form = {
        "grant_type": "client_credentials",
        "client_id": WEB,
        "scope": f"{OUTLOOK}/.default",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
    }
    for alg in ("PS256", "RS256"):
        assert token(idp, **form, client_assertion=assertion(alg, aud=aud)).status_code == 200
    stale = token(idp, **form, client_assertion=assertion(aud=aud, age=3600))
    assert_entra(stale, "invalid_client", 700024, 401)
    forged = token(idp, **form, client_assertion=assertion(aud=aud, key=rsa_key()))
    assert_entra(forged, "invalid_client", 700027, 401)
    kind = form["client_assertion_type"]
    public = ropc(idp, client_assertion=assertion(aud=aud), client_assertion_type=kind)
    assert_entra(public, "invalid_client", 700025, 401)


def test_an_assertion_with_several_audiences_is_5002741(idp: IdentityProvider) -> None:
    aud = f"{idp.base_url}/{TENANT}/oauth2/v2.0/token"
    form = {
        "grant_type": "client_credentials",
        "client_id": WEB,
        "scope": f"{OUTLOOK}/.default",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
    }
    several = token(idp, **form, client_assertion=assertion(aud=[f"{idp.base_url}/v2.0", aud]))
    assert_entra(several, "invalid_client", 5002741, 401)
    assert "2 audience values provided" in several.json()["error_description"]
    assert token(idp, **form, client_assertion=assertion(aud=[aud])).status_code == 200


def test_an_application_can_accept_only_the_older_assertion_form(idp: IdentityProvider) -> None:
    aud = f"{idp.base_url}/{TENANT}/oauth2/v2.0/token"
    form = {
        "grant_type": "client_credentials",
        "client_id": WEB,
        "scope": f"{OUTLOOK}/.default",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
    }
    idp.apps[WEB].assertion_forms = ["RS256+x5t"]
    try:
        documented = token(idp, **form, client_assertion=assertion("PS256", aud=aud))
        assert_entra(documented, "invalid_client", 700027, 401)
        assert token(idp, **form, client_assertion=assertion("RS256", aud=aud)).status_code == 200
    finally:
        idp.apps[WEB].assertion_forms = None


def test_the_next_refreshes_can_be_refused(idp: IdentityProvider) -> None:
    first = ropc(idp).json()
    grant = {"grant_type": "refresh_token", "client_id": PUBLIC}
    control = http_clients.post(
        f"{idp.base_url}/_sandbox/refresh-refusals",
        json={"code": 70000, "times": 2, "username": ANNA, "client_id": PUBLIC},
    )
    assert control.status_code == 200
    for _ in range(2):
        refused = token(idp, **grant, refresh_token=first["refresh_token"])
        assert_entra(refused, "invalid_grant", 70000)
        assert "'refresh_token' or 'assertion' is not valid" in refused.json()["error_description"]
    again = token(idp, **grant, refresh_token=first["refresh_token"])
    assert again.status_code == 200  # the same token works


# --- device code --------------------------------------------------------------------------


def start_device(idp: IdentityProvider, client_id: str = PUBLIC) -> httpx2.Response:
    url = f"{idp.base_url}/{TENANT}/oauth2/v2.0/devicecode"
    return http_clients.post(
        url, data={"client_id": client_id, "scope": f"{IMAP_SCOPE} offline_access"}
    )


def device_sign_in(idp: IdentityProvider, user_code: str, consent: str = "accept") -> str:
    with http_clients.Client(base_url=idp.base_url, follow_redirects=False) as client:
        entry = client.get("/devicelogin")
        code = submit(client, entry, "devicelogin", user_code=user_code)
        return browse(client, code, ANNA, consent).text


def test_device_code_pending_success_declined_expired(idp: IdentityProvider) -> None:
    started = start_device(idp).json()
    assert started["verification_uri"] == f"{idp.base_url}/devicelogin"
    assert (started["expires_in"], started["interval"]) == (900, 1)
    assert started["user_code"] in started["message"]
    assert "verification_uri_complete" not in started
    poll = {"grant_type": DEVICE_GRANT, "client_id": PUBLIC, "device_code": started["device_code"]}
    assert_entra(token(idp, **poll), "authorization_pending", 70016)
    assert "You have signed in" in device_sign_in(idp, started["user_code"])
    done = token(idp, **poll).json()
    assert done["refresh_token"]
    assert idp.access_tokens[done["access_token"]].username == ANNA

    declined = start_device(idp).json()
    assert "declined" in device_sign_in(idp, declined["user_code"], consent="decline")
    poll["device_code"] = declined["device_code"]
    assert_entra(token(idp, **poll), "authorization_declined", 70020)

    expired = start_device(idp).json()
    idp.devices[expired["device_code"]].expires_at = time.time() - 1
    poll["device_code"] = expired["device_code"]
    assert_entra(token(idp, **poll), "expired_token", 70019)
    poll["device_code"] = "nope"
    assert_entra(token(idp, **poll), "bad_verification_code", 70018)
    assert_entra(start_device(idp, WEB), "invalid_client", 7000218, 401)  # not public


# --- introspection, user realm, bookkeeping -----------------------------------------------


def test_introspection(idp: IdentityProvider) -> None:
    url = f"{idp.base_url}/introspect"
    user_token = ropc(idp).json()["access_token"]
    app_only = {"grant_type": "client_credentials", "scope": f"{OUTLOOK}/.default"}
    app_token = token(idp, auth=(WEB, WEB_SECRET), **app_only).json()["access_token"]
    assert http_clients.post(url, data={"token": user_token}).status_code == 401  # closed
    seen = http_clients.post(url, data={"token": user_token}, auth=(WEB, WEB_SECRET)).json()
    assert seen["active"] is True
    assert (seen["username"], seen["client_id"]) == (ANNA, PUBLIC)
    assert seen["aud"] == "https://outlook.office.com"
    assert seen["scope"] == IMAP_SCOPE
    assert seen["exp"] - seen["iat"] == 3599
    body = {"token": app_token, "client_id": WEB, "client_secret": WEB_SECRET}
    app_seen = http_clients.post(url, data=body).json()
    assert app_seen["username"] is None
    assert app_seen["roles"] == ["IMAP.AccessAsApp", "POP.AccessAsApp"]
    unknown = http_clients.post(url, data={"token": "nope"}, auth=(WEB, WEB_SECRET))
    assert unknown.json() == {"active": False}
    idp.access_tokens[user_token].expires_at = int(time.time()) - 1
    expired = http_clients.post(url, data={"token": user_token}, auth=(WEB, WEB_SECRET))
    assert expired.json() == {"active": False}


def test_introspection_for_a_named_resource_server(idp: IdentityProvider) -> None:
    """A resource server that names itself (``?resource=``) sees only tokens meant for it:
    Exchange answers to both host names; a Graph token, or an Exchange token without a mail
    scope, is not active for it."""
    graph_token = ropc(idp, scope="https://graph.microsoft.com/Mail.Read").json()["access_token"]
    bare = ropc(idp, scope="IMAP.AccessAsUser.All").json()["access_token"]  # Graph's, by name
    imap_token = ropc(idp).json()["access_token"]
    other_scope = ropc(idp, scope=f"{OUTLOOK}/EWS.AccessAsUser.All").json()["access_token"]
    app_only = {"grant_type": "client_credentials", "scope": f"{OUTLOOK}/.default"}
    app_token = token(idp, auth=(WEB, WEB_SECRET), **app_only).json()["access_token"]

    def active(access_token: str, resource: str) -> bool:
        answer = http_clients.post(
            f"{idp.base_url}/introspect",
            params={"resource": resource},
            data={"token": access_token},
            auth=(WEB, WEB_SECRET),
        )
        assert answer.status_code == 200
        return bool(answer.json()["active"])

    for exchange in ("https://outlook.office.com", OUTLOOK):
        assert active(imap_token, exchange)
        assert active(app_token, exchange)
        assert not active(graph_token, exchange)
        assert not active(bare, exchange)
        assert not active(other_scope, exchange)
    assert active(graph_token, "https://graph.microsoft.com")
    assert not active(imap_token, "https://graph.microsoft.com")


def test_user_realm(idp: IdentityProvider) -> None:
    def realm(username: str) -> dict[str, Any]:
        url = f"{idp.base_url}/common/userrealm/{username}"
        found: dict[str, Any] = http_clients.get(url, params={"api-version": "1.0"}).json()
        return found

    federated = realm(f"fed@{DOMAIN}")
    assert federated["account_type"] == "Federated"
    assert federated["federation_protocol"] == "WSTrust"
    assert federated["cloud_instance_name"] == "microsoftonline.com"
    managed = realm(ANNA)
    assert (managed["ver"], managed["account_type"], managed["domain_name"]) == (
        "1.0",
        "Managed",
        DOMAIN,
    )
    assert realm("x@fabrikam.example")["account_type"] == "Unknown"


def test_token_requests_are_recorded(idp: IdentityProvider) -> None:
    idp.reset_counters()
    ropc(idp, password="wrong")
    app_only = {"grant_type": "client_credentials", "scope": f"{OUTLOOK}/.default"}
    token(idp, client_id=WEB, client_secret=WEB_SECRET, **app_only)
    url = f"{idp.base_url}/{TENANT}/oauth2/v2.0/token"
    http_clients.post(url, headers={"Via": "1.1 proxy"}, data={"grant_type": "client_credentials"})
    token(idp, "nope.example", grant_type="password")
    seen = http_clients.get(f"{idp.base_url}/_sandbox/token-requests").json()["token_requests"]
    assert seen == idp.token_requests
    first, second, third, fourth = seen
    assert (first["grant_type"], first["username"], first["status"]) == ("password", ANNA, 400)
    assert (first["client_id"], first["tenant"], first["via_proxy"]) == (PUBLIC, TENANT, False)
    assert (second["grant_type"], second["status"], second["username"]) == (
        "client_credentials",
        200,
        None,
    )
    assert third["via_proxy"] is True
    assert third["via"] == "1.1 proxy"
    assert (fourth["tenant"], fourth["status"]) == ("nope.example", 400)


# --- alone --------------------------------------------------------------------------------


def test_config_file(tmp_path: Path) -> None:
    pem = tmp_path / "cert.pem"
    pem.write_bytes(pem_certificate(CERT))
    config = tmp_path / "tenant.yaml"
    config.write_text(
        "domain: fabrikam.onmicrosoft.com\n"
        "device_interval: 1\n"
        "apps:\n"
        "  - client_id: app-1\n"
        "    secrets: {s1: 2020-01-01T00:00:00Z, s2: null}\n"
        "    certificates: [cert.pem]\n"
        "    redirect_uris: {'http://localhost/': public}\n"
        "users:\n"
        "  - {username: a@fabrikam.onmicrosoft.com, password: p, consented_apps: [app-1]}\n"
    )
    provider = load_config(config)
    assert provider.domain == "fabrikam.onmicrosoft.com"
    app = provider.apps["app-1"]
    assert app.secrets["s1"] is not None
    assert app.secrets["s1"] < datetime.now(UTC)
    assert app.certificates[0].startswith("-----BEGIN CERTIFICATE")
    assert provider.users["a@fabrikam.onmicrosoft.com"].consented_apps == {"app-1"}


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
        found = http_clients.get(f"{base}/organizations/v2.0/.well-known/openid-configuration")
        assert found.status_code == 200
    finally:
        process.terminate()
        process.communicate(timeout=10)
