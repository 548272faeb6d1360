"""Token responses and requests, against a scripted token endpoint (httpx2 MockTransport)."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest

from mailintake import errors
from mailintake.config.matrix import Grant
from mailintake.errors import AuthError, NetworkError
from mailintake.oauth import device as device_grant
from mailintake.oauth import diagnose, grants
from mailintake.oauth.authorize import callback_params, is_loopback
from mailintake.oauth.grants import ClientCredentials, Endpoint
from mailintake.oauth.loopback import LoopbackListener
from sandbox import http_clients

URL = "https://login.example.com/tenant/oauth2/v2.0/token"


def endpoint(
    handler: httpx2.MockTransport,
    grant: Grant = Grant.CLIENT_CREDENTIALS,
    client: ClientCredentials | None = None,
) -> Endpoint:
    return Endpoint(
        URL,
        client or ClientCredentials("client-1", secret="s3cret"),
        diagnose.Context(grant=grant, phase="token", server="MICROSOFT", username="a@b.c"),
        "box",
        http_clients.Client(transport=handler),
    )


def test_resource_of_scopes() -> None:
    assert (
        grants.resource_of(("https://outlook.office.com/IMAP.AccessAsUser.All", "offline_access"))
        == "https://outlook.office.com"
    )
    assert grants.resource_of(("offline_access", "Mail.Read")) == "https://graph.microsoft.com"
    assert grants.resource_of(("https://mail.google.com/",)) == "https://mail.google.com"


def test_request_body_and_expiry_from_expires_in() -> None:
    seen: dict[str, list[str]] = {}

    def handle(request: httpx2.Request) -> httpx2.Response:
        seen.update(parse_qs(request.content.decode()))
        return httpx2.Response(
            200, json={"access_token": "at", "token_type": "Bearer", "expires_in": 4242}
        )

    answer = grants.client_credentials(
        endpoint(httpx2.MockTransport(handle)), ("https://graph.microsoft.com/.default",)
    )
    assert seen == {
        "client_id": ["client-1"],
        "client_secret": ["s3cret"],
        "grant_type": ["client_credentials"],
        "scope": ["https://graph.microsoft.com/.default"],
    }
    assert (answer.expires_at - answer.obtained_at).total_seconds() == 4242
    assert answer.refresh_token is None
    assert answer.scopes == ("https://graph.microsoft.com/.default",)


def test_unknown_lifetime_is_not_assumed() -> None:
    transport = httpx2.MockTransport(lambda _r: httpx2.Response(200, json={"access_token": "at"}))
    answer = grants.client_credentials(endpoint(transport), ("x/.default",))
    assert answer.expires_at == answer.obtained_at


def test_public_client_sends_no_secret_and_certificate_sends_an_assertion() -> None:
    bodies: list[dict[str, list[str]]] = []

    def handle(request: httpx2.Request) -> httpx2.Response:
        bodies.append(parse_qs(request.content.decode()))
        return httpx2.Response(200, json={"access_token": "at", "expires_in": 60})

    transport = httpx2.MockTransport(handle)
    grants.password(
        endpoint(transport, Grant.PASSWORD, ClientCredentials("public")),
        "a@b.c",
        "pw",
        ("Mail.Read",),
    )
    assert "client_secret" not in bodies[0]
    with_cert = ClientCredentials("app", assertion=lambda aud, form: f"jwt-for-{aud}")
    grants.client_credentials(endpoint(transport, client=with_cert), ("x/.default",))
    assert bodies[1]["client_assertion"] == [f"jwt-for-{URL}"]
    assert bodies[1]["client_assertion_type"] == [grants.JWT_BEARER]
    assert "client_secret" not in bodies[1]


def test_a_refusal_becomes_the_diagnosed_error() -> None:
    body = {
        "error": "invalid_client",
        "error_description": "AADSTS7000215: Invalid client secret provided.\r\nTrace ID: x",
        "error_codes": [7000215],
    }
    transport = httpx2.MockTransport(lambda _r: httpx2.Response(401, json=body))
    with pytest.raises(AuthError) as caught:
        grants.client_credentials(endpoint(transport), ("x/.default",))
    assert caught.value.code == "AADSTS7000215"
    assert str(caught.value).startswith("box: ")


def test_a_non_json_success_is_a_clear_error() -> None:
    transport = httpx2.MockTransport(lambda _r: httpx2.Response(200, text="<html>proxy</html>"))
    with pytest.raises(NetworkError, match="did not answer JSON"):
        grants.client_credentials(endpoint(transport), ("x/.default",))


@pytest.mark.parametrize("body", [{}, {"access_token": ""}, {"token_type": "Bearer"}])
def test_a_success_without_a_token_is_the_servers_protocol_error(body: dict[str, str]) -> None:
    transport = httpx2.MockTransport(lambda _r: httpx2.Response(200, json=body))
    with pytest.raises(AuthError) as caught:
        grants.client_credentials(endpoint(transport), ("x/.default",))
    assert type(caught.value) is AuthError
    assert caught.value.state == "error"
    assert caught.value.exit_code == 3
    assert str(caught.value).startswith(
        f"box: the token server {URL} answered without a token (HTTP 200 with no access_token)"
    )


def test_device_polling_waits_while_the_sign_in_is_pending() -> None:
    answers = [
        httpx2.Response(400, json={"error": "authorization_pending"}),
        httpx2.Response(400, json={"error": "slow_down"}),
        httpx2.Response(200, json={"access_token": "at", "expires_in": 60}),
    ]
    slept: list[float] = []
    device = device_grant.DeviceCode(
        device_code="dc",
        user_code="ABCD",
        verification_uri="https://login.example.com/device",
        expires_at=10**12,
        interval=5,
        message="sign in",
        scopes=("Mail.Read",),
    )
    answer = device_grant.poll_device(
        endpoint(httpx2.MockTransport(lambda _r: answers.pop(0)), Grant.DEVICE_CODE),
        device,
        sleep=slept.append,
    )
    assert answer.access_token == "at"
    assert slept == [5, 10]


def test_a_pending_sign_in_is_in_the_exception_tree() -> None:
    """Outside the device flow's polling loop it is what it says: a person has not finished
    signing in, and asking again later may help (exit 4), not an unexplained crash."""
    assert grants.AuthorizationPending is errors.AuthorizationPending
    transport = httpx2.MockTransport(
        lambda _r: httpx2.Response(400, json={"error": "authorization_pending"})
    )
    with pytest.raises(errors.TransientError) as caught:
        grants.client_credentials(endpoint(transport), ("x/.default",))
    assert isinstance(caught.value, errors.AuthorizationPending)
    assert caught.value.exit_code == 4
    assert caught.value.slow_down is False


def test_code_request_uses_pkce_s256_state_and_login_hint() -> None:
    request = grants.code_request(
        "https://login.example.com/authorize",
        "client-1",
        "http://localhost:5000/",
        ("a", "b"),
        "user@example.com",
    )
    query = parse_qs(urlsplit(request.url).query)
    assert query["code_challenge_method"] == ["S256"]
    assert len(query["code_challenge"][0]) == 43
    assert query["state"] == [request.state]
    assert query["login_hint"] == ["user@example.com"]
    assert query["scope"] == ["a b"]
    other = grants.code_request(
        "https://login.example.com/authorize", "client-1", "http://localhost:5000/", ("a",), None
    )
    assert other.state != request.state
    assert other.code_verifier != request.code_verifier


def test_loopback_listener_takes_a_free_port_and_receives_the_redirect() -> None:
    assert is_loopback("http://localhost/")
    assert not is_loopback("https://login.microsoftonline.com/common/oauth2/nativeclient")
    listener = LoopbackListener("http://localhost/")
    try:
        port = int(listener.redirect_uri.split(":")[2].split("/")[0])
        assert port > 0
        page = http_clients.get(f"http://127.0.0.1:{port}/?code=abc&state=xyz")
        assert "Login successful" in page.text
        assert listener.wait(5) == {"code": "abc", "state": "xyz"}
    finally:
        listener.close()
    assert callback_params("https://x/cb?code=1&state=2") == {"code": "1", "state": "2"}
    assert json.dumps(callback_params("https://x/cb#code=1")) == '{"code": "1"}'


@pytest.mark.parametrize(
    ("uri", "accepted"),
    [
        ("https://microsoft.com/devicelogin", True),
        ("https://www.google.com/device", True),
        ("http://127.0.0.1:5000/devicelogin", True),  # a local stand-in
        ("http://localhost/devicelogin", True),
        ("http://[::1]:8000/devicelogin", True),
        ("http://login.example.com/devicelogin", False),
        ("javascript:alert(document.cookie)", False),
        ("JavaScript:alert(1)", False),
        ("data:text/html,<script>alert(1)</script>", False),
        ("https:///no-host", False),
        ("//evil.example/devicelogin", False),
        (None, False),
    ],
)
def test_the_device_code_address_must_be_https(uri: str | None, accepted: bool) -> None:
    def handle(_request: httpx2.Request) -> httpx2.Response:
        answer = {"device_code": "dc", "user_code": "UC-1", "expires_in": 900, "interval": 5}
        if uri is not None:
            answer["verification_uri"] = uri
        return httpx2.Response(200, json=answer)

    device = endpoint(httpx2.MockTransport(handle), Grant.DEVICE_CODE, ClientCredentials("c"))
    start = "https://login.example.com/tenant/oauth2/v2.0/devicecode"
    if accepted:
        assert device_grant.start_device(device, start, ("Mail.Read",)).verification_uri == uri
        return
    with pytest.raises(NetworkError) as refused:
        device_grant.start_device(device, start, ("Mail.Read",))
    assert str(refused.value).startswith(
        f"box: the device authorization endpoint answered verification_uri '{uri}', "
        "which is not an https:// address"
    )
