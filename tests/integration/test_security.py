"""The web admin's security layer: sign-in, API tokens, refusal of
cross-site changes, security headers, and no secret in any answer or in the database."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import select, update
from starlette.websockets import WebSocketDisconnect

from mailintake.settings import Settings
from mailintake.store import admin
from mailintake.store.repo import Store
from mailintake.store.tables import sign_in_failures, web_sessions
from mailintake.web.app import create_app
from mailintake.web.security import (
    CONTENT_SECURITY_POLICY,
    SESSION_COOKIE,
    SESSION_IDLE,
    SESSION_LIFETIME,
)
from mailintake.web.throttle import SignInThrottle
from tests.support.documents import (
    claims_mailbox,
    folder_output,
    invoices_mailbox,
    webhook_output,
)
from tests.support.store import database_text
from tests.support.web import QUICK_HASH

ADMIN_PASSWORD = "adm-Pw7~Vk3Jq9Lz2Hx"
CLIENT_SECRET = "sec-cs-Rt6Yp2Wm8Qa4Zx1"
ROPC_PASSWORD = "sec-pw-Gh3Jk7Lm2Np9Bv"
PROXY_PASSWORD = "sec-pp-Xc5Vb1Nm8Qw4Er"
IMAP_CLIENT_SECRET = "sec-imap-Uy6Ti2Op9As3Df"
HOOK_TOKEN = "sec-hook-Zq8Wx2Ec6Rv4Tb"
SECRETS = (CLIENT_SECRET, ROPC_PASSWORD, PROXY_PASSWORD, IMAP_CLIENT_SECRET, HOOK_TOKEN)
ORIGIN = "http://testserver"  # the TestClient's own origin
HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
# Graph's notification endpoints check their clientState instead (test_graph_push.py).
GRAPH = {"/notifications/graph", "/notifications/graph/lifecycle"}
PUBLIC = {"/login", "/metrics", "/api/v1/oauth/callback", "/healthz", *GRAPH}
HOSTS = ("testserver", "admin.example")  # the host names the TestClients use


def served(settings: Settings, **changes: Any) -> Settings:
    """``settings`` of a server that answers to the TestClients' host names."""
    return settings.model_copy(update={"allowed_hosts": HOSTS, **changes})


@pytest.fixture
def app(settings: Settings, store: Store) -> FastAPI:
    return create_app(served(settings), store=store, environ=dict)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, follow_redirects=False) as client:
        yield client


def sign_in(client: TestClient, store: Store, next_path: str = "/") -> Any:
    if not admin.admin_password_is_set(store):
        admin.set_admin_password(store, ADMIN_PASSWORD, QUICK_HASH)
    return client.post(
        "/login",
        data={"password": ADMIN_PASSWORD, "next": next_path},
        headers={"Origin": ORIGIN},
    )


def use_cookie(client: TestClient, value: str) -> None:
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, value)


def concrete(path: str, name: str = "x") -> str:
    return re.sub(r"\{[^}]+\}", name, path)


def routes(app: FastAPI) -> list[tuple[str, str]]:
    found = []
    for route in iter_route_contexts(app.routes):
        if route.path and route.methods:
            found.extend((method, route.path) for method in sorted(route.methods))
    return found


def test_unauthenticated_requests_are_refused(app: FastAPI, client: TestClient) -> None:
    checked = 0
    for method, path in routes(app):
        if path in PUBLIC or path.startswith("/static") or method == "HEAD":
            continue
        url = concrete(path)
        answer = client.request(method, url, headers={"Origin": ORIGIN})
        assert answer.status_code == 401, (method, url, answer.status_code)
        assert answer.json()["error"] == "authentication required"
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
        if method == "GET":
            page = client.get(url, headers=HTML)
            assert page.status_code == 303, url
            assert page.headers["location"].startswith("/login?next=")
        checked += 1
    assert checked >= 25  # every API route was tried
    page = client.get("/mailboxes/invoices?tab=oauth", headers=HTML)
    assert page.headers["location"] == "/login?next=/mailboxes/invoices%3Ftab%3Doauth"
    hx = client.get(
        "/mailboxes", headers={"HX-Request": "true", "HX-Current-URL": f"{ORIGIN}/servers"}
    )
    assert hx.status_code == 401
    assert hx.headers["HX-Redirect"] == "/login?next=/servers"
    bad = client.get("/api/v1/status", headers={"Authorization": "Bearer mit_not-a-token"})
    assert bad.status_code == 401
    assert 'error="invalid_token"' in bad.headers["WWW-Authenticate"]
    assert client.get("/api/v1/status", headers={"Authorization": "Basic eDp5"}).status_code == 401
    with pytest.raises(WebSocketDisconnect) as closed, client.websocket_connect("/ws"):
        pass
    assert closed.value.code == 1008
    # What stays reachable: the login page, the metrics, the probe, the OAuth callback.
    assert client.get("/login", headers=HTML).status_code == 200
    assert "# TYPE" in client.get("/metrics").text
    assert client.get("/healthz").json()["status"] == "ok"
    callback = client.get("/api/v1/oauth/callback", params={"state": "unknown"}, headers=HTML)
    assert callback.status_code == 400
    assert "Sign-in not recognised" in callback.text


def test_login_logout_and_forged_cookies(client: TestClient, store: Store) -> None:
    page = client.get("/login", params={"next": "/mailboxes"})
    assert "mailintake admin set-password" in page.text
    assert 'name="next" value="/mailboxes"' in page.text
    admin.set_admin_password(store, ADMIN_PASSWORD, QUICK_HASH)
    page = client.get("/login")
    assert "set-password" not in page.text
    assert '<link rel="stylesheet" href="/static/app.css">' in page.text
    assert "<script" not in page.text
    assert "style=" not in page.text

    wrong = client.post(
        "/login", data={"password": "not-the-password", "next": "/"}, headers={"Origin": ORIGIN}
    )
    assert wrong.status_code == 401
    assert "Wrong password." in wrong.text
    assert SESSION_COOKIE not in client.cookies
    assert client.get("/api/v1/status").status_code == 401

    answer = sign_in(client, store, "/mailboxes?x=1")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/mailboxes?x=1"
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Path=/" in cookie
    assert f"Max-Age={SESSION_IDLE}" in cookie
    assert "Secure" not in cookie
    assert ADMIN_PASSWORD not in cookie
    assert client.get("/api/v1/status").status_code == 200
    again = client.get("/login", params={"next": "/servers"})
    assert (again.status_code, again.headers["location"]) == (303, "/servers")

    value = client.cookies[SESSION_COOKIE]
    tampered = value[:-2] + ("AA" if not value.endswith("AA") else "BB")
    use_cookie(client, tampered)
    assert client.get("/api/v1/status").status_code == 401
    assert client.get("/", headers=HTML).status_code == 303
    use_cookie(client, value)
    assert client.get("/api/v1/status").status_code == 200

    client.cookies.clear()
    sign_in(client, store)
    out = client.post("/logout", headers={"Origin": ORIGIN})
    assert (out.status_code, out.headers["location"]) == (303, "/login")
    assert "Max-Age=0" in out.headers["set-cookie"]
    assert SESSION_COOKIE not in client.cookies
    assert client.get("/api/v1/status").status_code == 401


def test_the_cookie_is_secure_over_https(app: FastAPI, store: Store) -> None:
    with TestClient(app, base_url="https://admin.example", follow_redirects=False) as client:
        admin.set_admin_password(store, ADMIN_PASSWORD, QUICK_HASH)
        answer = client.post(
            "/login",
            data={"password": ADMIN_PASSWORD, "next": "/"},
            headers={"Origin": "https://admin.example"},
        )
        assert answer.status_code == 303
        assert "Secure" in answer.headers["set-cookie"]
        assert client.get("/api/v1/health").status_code == 200


def test_sessions_end_after_idle_time_and_a_new_password(
    app: FastAPI, client: TestClient, store: Store
) -> None:
    sign_in(client, store)
    assert client.get("/api/v1/status").status_code == 200
    # A cookie signed with the real key 12 hours and a minute ago has expired.
    key = admin.session_key(store)
    stale_signer = URLSafeTimedSerializer(key, salt="mailintake.session")
    real_value = client.cookies[SESSION_COOKIE]
    payload = URLSafeTimedSerializer(key, salt="mailintake.session").loads(real_value)
    signer = stale_signer.make_signer()
    old = int(time.time()) - SESSION_IDLE - 60
    signer.get_timestamp = lambda: old  # type: ignore[method-assign]
    stale = signer.sign(stale_signer.dump_payload(payload)).decode()
    use_cookie(client, stale)
    assert client.get("/api/v1/status").status_code == 401
    # One used after ten minutes is signed again: twelve idle hours count from now on.
    recent = int(time.time()) - 600
    signer.get_timestamp = lambda: recent  # type: ignore[method-assign]
    use_cookie(client, signer.sign(stale_signer.dump_payload(payload)).decode())
    renewed = client.get("/api/v1/status")
    assert renewed.status_code == 200
    assert renewed.headers["set-cookie"].startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in renewed.headers["set-cookie"]
    assert "set-cookie" not in client.get("/api/v1/status").headers
    use_cookie(client, real_value)
    assert client.get("/api/v1/status").status_code == 200
    # A new password signs every session out.
    admin.set_admin_password(store, "another-Pw-4Rt7Yu1", QUICK_HASH)
    assert client.get("/api/v1/status").status_code == 401
    assert not admin.verify_admin_password(store, ADMIN_PASSWORD)
    assert admin.verify_admin_password(store, "another-Pw-4Rt7Yu1")


def test_signing_out_ends_the_session_on_the_server(client: TestClient, store: Store) -> None:
    """A copy of the cookie (another tab, a stolen one) stops working at Sign out too; other
    sessions stay signed in."""
    sign_in(client, store)
    copied = client.cookies[SESSION_COOKIE]
    client.cookies.clear()
    sign_in(client, store)
    other = client.cookies[SESSION_COOKIE]
    use_cookie(client, copied)
    assert client.post("/logout", headers={"Origin": ORIGIN}).status_code == 303
    use_cookie(client, copied)
    assert client.get("/api/v1/status").status_code == 401
    assert client.get("/", headers=HTML).status_code == 303
    use_cookie(client, other)
    assert client.get("/api/v1/status").status_code == 200
    # The database holds only a hash of each session's identifier.
    identifier = URLSafeTimedSerializer(admin.session_key(store), salt="mailintake.session")
    session = identifier.loads(other)["s"]
    with store.read() as repo:
        rows = repo.conn.execute(select(web_sessions)).all()
    assert len(rows) == 1
    assert session not in repr(rows)


def test_a_session_ends_a_day_after_sign_in_however_used(client: TestClient, store: Store) -> None:
    """The cookie is signed again as it is used, but the server counts from the sign-in (and
    from the last request, for the idle time, whatever a forged cookie date says)."""
    sign_in(client, store)
    assert client.get("/api/v1/status").status_code == 200
    now = datetime.now(UTC)
    with store.begin() as repo:
        repo.conn.execute(
            update(web_sessions).values(last_seen_at=now - timedelta(seconds=SESSION_IDLE + 60))
        )
    assert client.get("/api/v1/status").status_code == 401
    client.cookies.clear()
    sign_in(client, store)
    with store.begin() as repo:
        repo.conn.execute(
            update(web_sessions).values(
                created_at=now - timedelta(seconds=SESSION_LIFETIME + 60), last_seen_at=now
            )
        )
    assert client.get("/api/v1/status").status_code == 401
    client.cookies.clear()
    sign_in(client, store)  # a new day, and the sessions past their day are cleared away
    assert client.get("/api/v1/status").status_code == 200
    with store.read() as repo:
        assert len(repo.conn.execute(select(web_sessions)).all()) == 1


def test_repeated_wrong_passwords_make_the_address_wait(
    app: FastAPI, client: TestClient, store: Store, settings: Settings
) -> None:
    now = [float(int(time.time()))]
    app.state.sign_in_throttle = SignInThrottle(
        lambda: store, limit=5, window=600, clock=lambda: now[0]
    )
    admin.set_admin_password(store, ADMIN_PASSWORD, QUICK_HASH)

    def attempt(password: str, on: TestClient = client) -> Any:
        return on.post("/login", data={"password": password}, headers={"Origin": ORIGIN})

    assert [attempt(f"guess-{n}").status_code for n in range(3)] == [401] * 3
    # A second `serve` process on the same database counts the same failures.
    other = create_app(served(settings), store=store, environ=dict)
    other.state.sign_in_throttle = SignInThrottle(
        lambda: store, limit=5, window=600, clock=lambda: now[0]
    )
    with TestClient(other, follow_redirects=False) as second:
        assert [attempt(f"guess-{n}", second).status_code for n in (3, 4)] == [401] * 2
        refused = attempt(ADMIN_PASSWORD, second)  # even the right one, while it must wait
        assert refused.status_code == 429
    refused = attempt(ADMIN_PASSWORD)
    assert refused.status_code == 429
    assert "Too many wrong passwords" in refused.text
    assert int(refused.headers["Retry-After"]) == 601
    assert SESSION_COOKIE not in client.cookies
    now[0] += 601
    assert attempt(ADMIN_PASSWORD).status_code == 303
    assert attempt("guess-after").status_code == 401  # a success starts the count again
    with store.read() as repo:  # only the failure since the success is kept
        assert len(repo.conn.execute(select(sign_in_failures)).all()) == 1


@pytest.mark.parametrize(
    "target",
    ["//evil.example/", "https://evil.example/", "/\\evil.example", "evil", "/\r\nSet-Cookie: x"],
)
def test_login_never_redirects_off_the_site(client: TestClient, store: Store, target: str) -> None:
    assert sign_in(client, store, target).headers["location"] == "/"
    assert client.get("/login", params={"next": target}).headers["location"] == "/"


def test_cross_site_changes_are_refused(client: TestClient, store: Store) -> None:
    sign_in(client, store)
    body = {"mailboxes": []}
    refused = [
        {"Origin": "https://evil.example"},
        {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "null"},
        {"Origin": "https://testserver"},  # another scheme is another origin
        {"Origin": ORIGIN, "Sec-Fetch-Site": "cross-site"},
        {},  # neither header: refused
    ]
    for headers in refused:
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            answer = client.request(method, "/api/v1/config/validate", json=body, headers=headers)
            assert answer.status_code == 403, (method, headers)
            assert answer.json()["error"] == "cross-site request refused"
    assert client.post("/logout", headers={"Origin": "https://evil.example"}).status_code == 403
    assert client.get("/api/v1/status").status_code == 200  # still signed in
    for headers in (
        {"Origin": ORIGIN},
        {"Origin": "http://TestServer:80"},
        {"Sec-Fetch-Site": "same-origin"},
        {"Sec-Fetch-Site": "none", "Origin": "https://evil.example"},
    ):
        answer = client.post("/api/v1/config/validate", json=body, headers=headers)
        assert answer.status_code == 200, (headers, answer.text)
    # The login form is checked the same way.
    login = client.post(
        "/login",
        data={"password": ADMIN_PASSWORD, "next": "/"},
        headers={"Origin": "https://evil.example"},
    )
    assert login.status_code == 403
    assert "set-cookie" not in login.headers


def test_api_tokens(app: FastAPI, store: Store) -> None:
    token = admin.create_api_token(store, "ci")
    assert token.startswith("mit_")
    assert len(token) > 40
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as api:
        # No Origin, no Sec-Fetch-Site: a bearer token is no ambient credential.
        answer = api.post("/api/v1/config/validate", json={"mailboxes": []})
        assert answer.status_code == 200
        cross = api.post(
            "/api/v1/config/validate", json={}, headers={"Origin": "https://evil.example"}
        )
        assert cross.status_code == 200
        assert api.get("/api/v1/status").status_code == 200
        [listed] = admin.list_api_tokens(store)
        assert listed.name == "ci"
        assert listed.last_used_at is not None
        admin.revoke_api_token(store, "ci")
        assert api.get("/api/v1/status").status_code == 401
    assert admin.list_api_tokens(store) == []


def test_security_headers_on_every_answer(client: TestClient, store: Store) -> None:
    answers = [client.get("/login"), client.get("/api/v1/status"), client.get("/", headers=HTML)]
    answers.append(client.get("/metrics"))
    answers.append(client.post("/api/v1/config/validate", json={}))
    sign_in(client, store)
    answers.append(client.get("/api/v1/health"))
    answers.append(client.post("/api/v1/config/validate", json={}, headers={"Origin": "x"}))
    answers.append(client.get("/api/v1/mailboxes/none"))
    answers.append(
        client.post("/api/v1/config/validate", json={"mailboxes": 1}, headers={"Origin": ORIGIN})
    )
    for answer in answers:
        assert answer.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert answer.headers["X-Frame-Options"] == "DENY"
        assert answer.headers["Referrer-Policy"] == "same-origin"
        assert "Cross-Origin-Opener-Policy" not in answer.headers
    assert {a.status_code for a in answers} == {200, 303, 401, 403, 404, 422}


def document(tmp: Path) -> dict[str, Any]:
    return {
        "outputs": [
            folder_output(str(tmp)),
            webhook_output("https://capture.example.com/ingest", HOOK_TOKEN),
        ],
        "mailboxes": [
            invoices_mailbox(
                CLIENT_SECRET,
                PROXY_PASSWORD,
                tenant_id="contoso.onmicrosoft.com",
                client_id="app-1",
            ),
            claims_mailbox(ROPC_PASSWORD, output="hook", client_id="app-2"),
            {
                "name": "orders",
                "protocol": "imap",
                "host": "outlook.office365.com",
                "username": "orders@contoso.com",
                "output": "capture",
                "oauth": {
                    "grant_type": "authorization_code",
                    "tenant_id": "contoso.onmicrosoft.com",
                    "client_id": "app-3",
                    "client_secret": IMAP_CLIENT_SECRET,
                    "redirect_uri": "http://localhost:8765/",
                },
            },
        ],
    }


def test_no_secret_in_any_answer_or_the_database(
    app: FastAPI, client: TestClient, store: Store, tmp_path: Path
) -> None:
    token = admin.create_api_token(store, "walker")
    admin.set_admin_password(store, ADMIN_PASSWORD)  # at the product's cost, not QUICK_HASH's
    sign_in(client, store)
    applied = client.post(
        "/api/v1/config/apply", json=document(tmp_path), headers={"Origin": ORIGIN}
    )
    assert applied.status_code == 200, applied.text
    texts = [applied.text]
    names = ["invoices", "claims", "orders", "capture", "hook", "MICROSOFT", "GOOGLE"]
    for method, path in routes(app):
        if method != "GET" or not path.startswith("/api/v1") or path.endswith("/callback"):
            continue
        for name in names if "{" in path else ["-"]:
            answer = client.get(concrete(path, name), params={"mailbox": name})
            texts.append(answer.text)
            texts.append(str(answer.headers))
    texts.append(client.get("/api/v1/config/export", params={"format": "yaml"}).text)
    texts.append(client.get("/login").text)
    assert len(texts) > 40
    seen = "\n".join(texts)
    assert "invoices@contoso.com" in seen  # the walk read the configuration back
    database = database_text(store)
    assert "walker" in database
    # argon2id at RFC 9106's second recommended cost (§4: 64 MiB, 3 passes, 4 lanes)
    assert "$argon2id$v=19$m=65536,t=3,p=4$" in database
    for secret in (*SECRETS, ADMIN_PASSWORD, token):
        assert secret not in seen
        assert secret not in database
    assert admin.verify_admin_password(store, ADMIN_PASSWORD)
    assert admin.check_api_token(store, token) == "walker"
