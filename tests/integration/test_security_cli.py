"""``mailintake admin``: the web admin's password and the REST API's tokens, as a user runs
the commands (a real process of its own, tests/support/launcher.py; the password prompt reads stdin
when there is no terminal)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from mailintake.store import admin
from mailintake.store.repo import Store
from tests.support import launcher

ADMIN_PASSWORD = "adm-Pw7~Vk3Jq9Lz2Hx"


class Cli:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def __call__(self, *args: str, input: str = "") -> subprocess.CompletedProcess[str]:
        return launcher.run(
            ["-m", "mailintake", *args],
            env=self.env,
            cwd=os.getcwd(),
            input=input,
            timeout=120,
            new_session=True,  # no terminal: the password prompt reads stdin
        )


@pytest.fixture
def cli(home: Path, database_url: str) -> Cli:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILINTAKE_")}
    env.update(MAILINTAKE_HOME=str(home), MAILINTAKE_DATABASE_URL=database_url)
    return Cli(env)


WEAK = [
    (" " * 8, "password: it is blank (only spaces or nothing)"),
    (" " * 20, "password: it is blank (only spaces or nothing)"),
    ("   eleven-char   ", "password: too short (11 characters)"),
    ("aaaaaaaaaaaaaaaa", "password: too easy to guess"),
]


@pytest.mark.parametrize(("weak", "problem"), WEAK, ids=["8-spaces", "20-spaces", "short", "easy"])
def test_a_weak_admin_password_is_refused(cli: Cli, store: Store, weak: str, problem: str) -> None:
    refused = cli("admin", "set-password", "--password-stdin", input=f"{weak}\n")
    assert refused.returncode == 2, weak
    assert problem in refused.stderr, refused.stderr
    prompted_weak = cli("admin", "set-password", input=f"{weak}\n{weak}\n")
    assert prompted_weak.returncode == 2, weak
    assert problem in prompted_weak.stderr
    assert not admin.admin_password_is_set(store)


def test_admin_commands(cli: Cli, store: Store) -> None:
    short = cli("admin", "set-password", "--password-stdin", input="short\n")
    assert short.returncode == 2
    assert "password: too short (5 characters); use at least 12 characters" in short.stderr
    assert not admin.admin_password_is_set(store)
    done = cli("admin", "set-password", "--password-stdin", input=f"{ADMIN_PASSWORD}\n")
    assert done.returncode == 0, done.stderr
    assert ADMIN_PASSWORD not in done.stdout + done.stderr
    assert admin.verify_admin_password(store, ADMIN_PASSWORD)
    prompted = cli("admin", "set-password", input="prompted-Pw-1\nprompted-Pw-1\n")
    assert prompted.returncode == 0, prompted.stderr
    assert admin.verify_admin_password(store, "prompted-Pw-1")
    mismatch = cli("admin", "set-password", input="one-Pw-12345\ntwo-Pw-12345\n")
    assert mismatch.returncode != 0
    assert admin.verify_admin_password(store, "prompted-Pw-1")

    created = cli("admin", "token", "create", "monitoring")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert admin.check_api_token(store, token) == "monitoring"
    assert cli("admin", "token", "create", "monitoring").returncode == 2  # exists already
    assert cli("admin", "token", "create", "bad name").returncode == 2
    listed = cli("admin", "token", "list")
    assert "monitoring" in listed.stdout
    assert token not in listed.stdout
    assert '"name": "monitoring"' in cli("admin", "token", "list", "--json").stdout
    revoked = cli("admin", "token", "revoke", "monitoring")
    assert revoked.returncode == 0, revoked.stderr
    assert admin.check_api_token(store, token) is None
    again = cli("admin", "token", "revoke", "monitoring")
    assert again.returncode == 2
    assert "no API token named 'monitoring'" in again.stderr
