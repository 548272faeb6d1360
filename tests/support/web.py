"""The outside edges as a test drives them: the REST API and the web admin in the test's
process (FastAPI's TestClient; the ``api``, ``ui`` and ``ui_store`` fixtures of
tests/integration/conftest.py), the command (``Cli``, the ``cli`` fixture), and what a test
reads on a page (``errors_beside``, ``notice_of``) or sends in a form (``graph_form``).

The secrets the fixtures put in the environment are the ones a test then looks for where
they must never appear (logs, pages, the database)."""

from __future__ import annotations

import re
from pathlib import Path

from argon2 import PasswordHasher

from tests.support.cli import Completed, run_cli

# In the API's environment as GRAPH_SECRET (the ``api`` fixture).
API_GRAPH_SECRET = "api-cs-Yt5~Rk2Wq8Lp4Nm1Zx7"
# In the command's environment as GRAPH_SECRET and ROPC_PASSWORD (the ``cli`` fixture).
CLI_GRAPH_SECRET = "cs-Yt5~Rk2Wq8Lp4Nm1Zx7"
CLI_ROPC_PASSWORD = "pw-Dj6Hs3Fv9Gb2Kn5Mq8"
# The web admin's (the ``ui`` fixture) and what ``graph_form`` fills in.
TENANT = "0b6a6d2e-1234-4c1e-9b5e-123456789abc"
CLIENT = "11111111-2222-3333-4444-555555555555"
SECRET = "ui-cs-Hq4~Lm8Zt2Vb6Nw1Kd3"
PROXY_SECRET = "ui-pp-Rt5Yu8Io1Pa4Sd7Fg0"
ADMIN = "ui-admin-Password-1!"
# The admin passwords the tests set are hashed at argon2id's lowest cost: checking a password
# reads the cost from its hash, so a sign-in costs a millisecond instead of the third of a
# second of CPU the product's parameters take (test_security checks those).
QUICK_HASH = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)


class Cli:
    """``mailintake`` run in the test's process with the environment ``env``."""

    def __init__(self, home: Path, env: dict[str, str]) -> None:
        self.home = home
        self.env = env

    def __call__(self, *args: str, input: str | None = None) -> Completed:
        return run_cli(["--log-level", "debug", *args], env=self.env, input=input)


def graph_form(**changes: str) -> dict[str, str]:
    """The web admin's form for a Graph mailbox "claims" (client credentials, a proxy)."""
    form = {
        "name": "claims",
        "protocol": "graph",
        "username": "claims@contoso.com",
        "output": "capture",
        "enabled": "on",
        "oauth.authorization_server": "MICROSOFT",
        "oauth.grant_type": "client_credentials",
        "oauth.tenant_id": TENANT,
        "oauth.client_id": CLIENT,
        "oauth.client_secret": SECRET,
        "oauth.scopes": "https://graph.microsoft.com/.default",
        "oauth.token_endpoint": "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token",
        "proxy.address": "http://127.0.0.1:9",
        "proxy.username": "svc",
        "proxy.password": PROXY_SECRET,
    }
    form.update(changes)
    return form


def errors_beside(page: str) -> dict[str, str]:
    """The problems a page shows beside its fields, by field."""
    return dict(re.findall(r'data-error-for="([^"]+)">([^<]*)<', page))


def notice_of(page: str) -> str | None:
    """The notice at the top of a page, if any."""
    found = re.search(r'<p class="notice" role="status">(.*?)</p>', page, re.S)
    return None if found is None else found.group(1)
