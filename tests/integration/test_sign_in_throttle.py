"""The sign-in throttle against what an attacker can do: send wrong passwords in parallel (to
one or several ``serve`` processes on one database), and invent ``X-Forwarded-For`` addresses.
Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from mailintake.errors import ConfigError
from mailintake.settings import Settings
from mailintake.store import admin
from mailintake.store.repo import Store
from mailintake.store.tables import sign_in_failures
from mailintake.web.app import create_app
from mailintake.web.security import SESSION_COOKIE
from tests.support.web import QUICK_HASH

pytestmark = pytest.mark.both_databases

ADMIN_PASSWORD = "thr-Pw4~Nc8Lq2Zs6Vb"
ORIGIN = "http://testserver"


def served(settings: Settings, **changes: Any) -> Settings:
    return settings.model_copy(update={"allowed_hosts": ("testserver",), **changes})


def attempt(client: TestClient, password: str, **headers: str) -> int:
    answer = client.post(
        "/login", data={"password": password, "next": "/"}, headers={"Origin": ORIGIN, **headers}
    )
    return answer.status_code


def counted_addresses(store: Store) -> list[str]:
    with store.read() as repo:
        return sorted(r.address for r in repo.conn.execute(select(sign_in_failures)).all())


def test_parallel_wrong_passwords_are_checked_at_most_five_times(
    settings: Settings, store: Store
) -> None:
    """Twelve wrong passwords at once, spread over two ``serve`` processes sharing the
    database: five are checked, seven refused unchecked."""
    admin.set_admin_password(store, ADMIN_PASSWORD, QUICK_HASH)
    checked: list[str] = []
    lock = threading.Lock()

    def verify(store: Store, password: str) -> bool:
        with lock:
            checked.append(password)
        time.sleep(0.2)  # a slow hash: every attempt arrives while others are being checked
        return admin.verify_admin_password(store, password)

    first, second = (
        create_app(served(settings), store=store, environ=dict, verify_password=verify)
        for _ in range(2)
    )
    start = threading.Barrier(12)
    with (
        TestClient(first, follow_redirects=False) as one,
        TestClient(second, follow_redirects=False) as two,
    ):
        # FastAPI builds an app's routes on its first request, in a warnings.catch_warnings()
        # that is not thread-safe; two apps doing so at once can let a warning through.
        # One process serves one app, so each app answers once before the race begins.
        assert one.get("/login").status_code == two.get("/login").status_code == 200

        def guess(n: int) -> int:
            start.wait()
            return attempt((one, two)[n % 2], f"guess-{n}")

        with ThreadPoolExecutor(12) as pool:
            codes = list(pool.map(guess, range(12)))
        assert len(checked) == 5, checked
        assert sorted(codes) == [401] * 5 + [429] * 7
        # Even the right password waits now, unchecked.
        assert attempt(one, ADMIN_PASSWORD) == 429
        assert len(checked) == 5


def test_invented_forwarded_addresses_get_no_fresh_tries(settings: Settings, store: Store) -> None:
    """Without trusted proxies (the default), X-Forwarded-For is ignored, from loopback too."""
    admin.set_admin_password(store, ADMIN_PASSWORD, QUICK_HASH)
    app = create_app(served(settings), store=store, environ=dict)
    with TestClient(app, client=("127.0.0.1", 50000), follow_redirects=False) as client:
        codes = [
            attempt(client, f"guess-{n}", **{"X-Forwarded-For": f"203.0.113.{n}"}) for n in range(7)
        ]
        assert codes == [401] * 5 + [429] * 2
        assert attempt(client, ADMIN_PASSWORD, **{"X-Forwarded-For": "198.51.100.9"}) == 429
    assert counted_addresses(store) == ["127.0.0.1"] * 5


def test_a_trusted_proxy_forwards_the_client_address(settings: Settings, store: Store) -> None:
    admin.set_admin_password(store, ADMIN_PASSWORD, QUICK_HASH)
    proxied = served(settings, trusted_proxies=("127.0.0.0/8", "10.0.0.5"))
    app = create_app(proxied, store=store, environ=dict)
    with TestClient(app, client=("127.0.0.1", 50000), follow_redirects=False) as proxy:
        client = {"X-Forwarded-For": "203.0.113.7"}
        assert [attempt(proxy, f"guess-{n}", **client) for n in range(6)] == [401] * 5 + [429]
        # Another client behind the same proxy has its own count.
        assert attempt(proxy, "guess", **{"X-Forwarded-For": "203.0.113.8"}) == 401
        # The client is the right-most address not of a trusted proxy: what the client
        # itself wrote to the left of it changes nothing.
        assert attempt(proxy, "guess", **{"X-Forwarded-For": "198.51.100.1, 203.0.113.7"}) == 429
        assert attempt(proxy, "guess", **{"X-Forwarded-For": "203.0.113.9, 10.0.0.5"}) == 401
        # X-Forwarded-Proto from the proxy: the browser's origin is https, the cookie Secure.
        signed_in = proxy.post(
            "/login",
            data={"password": ADMIN_PASSWORD, "next": "/"},
            headers={
                "X-Forwarded-For": "203.0.113.10",
                "X-Forwarded-Proto": "https",
                "Origin": "https://testserver",
            },
        )
        assert signed_in.status_code == 303
        assert "Secure" in signed_in.headers["set-cookie"]
        assert SESSION_COOKIE in signed_in.headers["set-cookie"]
    with TestClient(app, client=("192.0.2.1", 50000), follow_redirects=False) as direct:
        # A peer that is not a trusted proxy: its X-Forwarded-For is ignored.
        assert attempt(direct, "guess", **{"X-Forwarded-For": "203.0.113.20"}) == 401
    assert counted_addresses(store) == sorted(
        ["203.0.113.7"] * 5 + ["203.0.113.8", "203.0.113.9", "192.0.2.1"]
    )


def test_trusted_proxies_setting(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILINTAKE_TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1,::1")
    monkeypatch.setenv("MAILINTAKE_ALLOWED_HOSTS", "admin.example.com,localhost")
    from_env = Settings(home=settings.home)
    assert from_env.trusted_proxies == ("10.0.0.0/8", "127.0.0.1", "::1")
    assert from_env.allowed_hosts == ("admin.example.com", "localhost")
    assert Settings(home=settings.home, trusted_proxies=()).trusted_proxies == ()
    monkeypatch.delenv("MAILINTAKE_TRUSTED_PROXIES")
    assert Settings(home=settings.home).trusted_proxies == ()  # off by default
    with pytest.raises(ConfigError) as refused:
        create_app(settings.model_copy(update={"trusted_proxies": ("proxy.example", "10.0.0.1")}))
    assert refused.value.problems == [
        "trusted_proxies: 'proxy.example' is not an IP address or network "
        "(e.g. 10.0.0.5 or 10.0.0.0/24)"
    ]
