"""``mailintake serve`` as a real process (tests/support/launcher.py), as an attacker meets
it: invented ``X-Forwarded-For`` addresses, a host name that is not the server's (DNS
rebinding), and, at first start, the console saying how to set the admin password."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mailintake.runtime import open_store
from mailintake.settings import Settings
from mailintake.store import admin
from sandbox import http_clients
from tests.support import serve
from tests.support.web import QUICK_HASH

ADMIN_PASSWORD = "srv-Pw9~Hd3Kx7Lm1Qa"


@contextmanager
def serving(home: Path, *options: str) -> Iterator[tuple[str, list[str]]]:
    """``serve`` without its scheduler: the perimeter alone."""
    with serve.serving(home, "--no-scheduler", *options) as running:
        yield running


def _set_password(home: Path) -> None:
    store = open_store(Settings(home=home, database_url=None))
    try:
        admin.set_admin_password(store, ADMIN_PASSWORD, QUICK_HASH)
    finally:
        store.engine.dispose()


def _login(base: str, password: str, **headers: str) -> int:
    answer = http_clients.post(
        f"{base}/login",
        data={"password": password, "next": "/"},
        headers={"Origin": base, **headers},
        timeout=10,
    )
    return answer.status_code


def test_first_start_says_how_to_set_the_admin_password(home: Path) -> None:
    with serving(home) as (base, console):
        assert "mailintake admin set-password" in http_clients.get(f"{base}/login", timeout=5).text
    [text] = console
    assert "no admin password is set" in text
    assert f"mailintake --home {home} admin set-password" in text
    _set_password(home)
    with serving(home) as (_, console):
        pass
    assert "no admin password" not in console[0]


def test_forwarded_for_is_ignored_and_foreign_host_names_refused(home: Path) -> None:
    _set_password(home)
    with serving(home) as (base, _):
        codes = [
            _login(base, f"guess-{n}", **{"X-Forwarded-For": f"203.0.113.{n}"}) for n in range(6)
        ]
        assert codes == [401] * 5 + [429]
        # DNS rebinding: a page of evil.example, its name now pointing at 127.0.0.1, sends
        # its own (matching) origin; the host name is not one of the server's.
        for path in ("/login", "/api/v1/status", "/healthz"):
            refused = http_clients.get(
                f"{base}{path}",
                headers={"Host": "evil.example", "Origin": "http://evil.example"},
                timeout=5,
            )
            assert refused.status_code == 400, path
            assert refused.json()["error"] == "host not allowed"
        port = base.rsplit(":", 1)[1]
        assert http_clients.get(f"http://localhost:{port}/login", timeout=5).status_code == 200


def test_forwarded_for_from_a_trusted_proxy(home: Path) -> None:
    _set_password(home)
    with serving(home, "--trusted-proxy", "127.0.0.1", "--allowed-host", "127.0.0.1") as (
        base,
        _,
    ):
        first = {"X-Forwarded-For": "203.0.113.1"}
        assert [_login(base, f"guess-{n}", **first) for n in range(6)] == [401] * 5 + [429]
        assert _login(base, "guess", **{"X-Forwarded-For": "203.0.113.2"}) == 401
        assert _login(base, ADMIN_PASSWORD, **{"X-Forwarded-For": "203.0.113.3"}) == 303
        port = base.rsplit(":", 1)[1]
        # Only the configured names now.
        assert http_clients.get(f"http://localhost:{port}/login", timeout=5).status_code == 400


def test_the_printed_command_carries_no_database_password(home: Path) -> None:
    from mailintake.cli.serve_cmd import set_password_command

    secret = "db-Pw5~Rt8Yu2Io"
    url = f"postgresql+psycopg://intake:{secret}@db.example:5432/intake"
    command = set_password_command(Settings(home=home, database_url=url))
    assert secret not in command
    assert command == (
        f"mailintake --home {home} --database-url "
        "postgresql+psycopg://intake:PASSWORD@db.example:5432/intake admin set-password"
    )
    plain = set_password_command(Settings(home=home, database_url="postgresql://db/intake"))
    assert plain.endswith("--database-url postgresql://db/intake admin set-password")
