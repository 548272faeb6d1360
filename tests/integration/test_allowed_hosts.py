"""The host names the web admin answers to: a page that reaches a loopback ``serve``
through DNS rebinding sends its own host name (and a matching Origin), and is refused with
400 before sign-in, CSRF checks or any handler run."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from starlette.websockets import WebSocketDisconnect

from mailintake.errors import ConfigError
from mailintake.settings import Settings
from mailintake.store import admin
from mailintake.store.repo import Store
from mailintake.store.tables import sign_in_failures
from mailintake.web.app import create_app
from mailintake.web.hosts import allowed, default_hosts, host_of
from mailintake.web.security import CONTENT_SECURITY_POLICY
from tests.support.web import QUICK_HASH

ADMIN_PASSWORD = "hst-Pw3~Gf8Jk2Lp6Zx"
BASE = "http://127.0.0.1:8484"
EVIL = {"Host": "evil.example:8484", "Origin": "http://evil.example:8484"}


def test_a_foreign_host_name_is_refused_before_anything_runs(
    settings: Settings, store: Store
) -> None:
    admin.set_admin_password(store, ADMIN_PASSWORD, QUICK_HASH)
    app = create_app(settings, store=store, environ=dict)  # the default names
    with TestClient(app, base_url=BASE, follow_redirects=False) as client:
        signed_in = client.post(
            "/login", data={"password": ADMIN_PASSWORD, "next": "/"}, headers={"Origin": BASE}
        )
        assert signed_in.status_code == 303
        assert client.get("/api/v1/status").status_code == 200
        # The same browser, its session cookie, the attacker's page and name.
        for method, path in (
            ("GET", "/api/v1/status"),
            ("POST", "/api/v1/config/validate"),
            ("GET", "/"),
            ("GET", "/login"),
            ("GET", "/healthz"),
            ("GET", "/static/app.css"),
        ):
            refused = client.request(method, path, headers=EVIL, json={})
            assert refused.status_code == 400, (method, path)
            assert refused.json()["error"] == "host not allowed"
            assert refused.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
            assert "set-cookie" not in refused.headers
        wrong = client.post("/login", data={"password": "guess"}, headers=EVIL)
        assert wrong.status_code == 400
        with store.read() as repo:  # not even counted as a sign-in attempt
            assert repo.conn.execute(select(sign_in_failures)).all() == []
        with (
            pytest.raises(WebSocketDisconnect) as closed,
            client.websocket_connect("/ws", headers=EVIL),
        ):
            pass
        assert closed.value.code == 1008
        for host in ("localhost:8484", "127.0.0.1", "[::1]:8484", "LOCALHOST."):
            answer = client.get("/api/v1/status", headers={"Host": host})
            assert answer.status_code == 200, host
        assert client.get("/api/v1/status", headers={"Host": ""}).status_code == 400


def test_configured_host_names_replace_the_defaults(settings: Settings, store: Store) -> None:
    names = ("admin.example.com", "*.intake.example", "10.1.2.3", "::1")
    app = create_app(settings.model_copy(update={"allowed_hosts": names}), store=store)
    with TestClient(app, base_url="https://admin.example.com") as client:
        for host, status in (
            ("admin.example.com", 401),
            ("Admin.Example.com:443", 401),
            ("eu.intake.example", 401),
            ("10.1.2.3:8080", 401),
            ("[::1]:8080", 401),
            ("intake.example", 400),
            ("localhost", 400),
            ("admin.example.com.evil.example", 400),
        ):
            assert client.get("/api/v1/status", headers={"Host": host}).status_code == status
    assert default_hosts("192.0.2.7") == ("localhost", "127.0.0.1", "[::1]", "192.0.2.7")
    assert default_hosts("0.0.0.0") == ("localhost", "127.0.0.1", "[::1]")  # noqa: S104
    assert default_hosts("::1") == ("localhost", "127.0.0.1", "[::1]")
    assert host_of("[::1]:80") == "[::1]"
    assert allowed("anything.example", ("*",))
    with pytest.raises(ConfigError) as refused:
        create_app(settings.model_copy(update={"allowed_hosts": ("http://admin.example/",)}))
    assert refused.value.problems == [
        "allowed_hosts: 'http://admin.example/' is not a host name (e.g. admin.example.com)"
    ]
