"""Mail on the Graph emulator (sandbox.graph; the ``emulator`` and ``graph`` fixtures of
tests/integration/conftest.py serve it): messages (``raw``), the mailbox "claims" delivering
to a folder output (``configure``, several: ``configure_many``; by the application:
``app_only``; signed in by a person: ``delegated``, ``sign_in``),
and an application token to call it directly (``app_token``)."""

from __future__ import annotations

import email.policy
import functools
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from mailintake.oauth.authorize import authorize
from mailintake.oauth.tokens import TokenManager
from mailintake.services.apply import apply_document
from mailintake.store.repo import Store
from sandbox import http_clients
from sandbox.idp import IdentityProvider
from tests.support.oauth import (
    ANNA,
    ANNA_PASSWORD,
    GRAPH_APP,
    GRAPH_SECRET,
    NATIVE_APP,
    Browser,
    interaction,
    microsoft_at,
)


def raw(n: int) -> bytes:
    """Claim ``n``, as Graph serves it (CRLF), to ANNA: ``built(n)`` with ``n`` put into one
    claim's bytes (the standard library takes milliseconds a message)."""
    number = str(n).encode()
    if len(number) > len(_NUMBER):  # longer lines than the standard library keeps whole
        return built(n)
    return _claim().replace(_NUMBER, number)


def built(n: int) -> bytes:
    """Claim ``n`` as the standard library writes it."""
    msg = EmailMessage()
    msg["From"] = "claims@insurer.example"
    msg["To"] = ANNA
    msg["Subject"] = f"Claim {n}"
    msg["Message-ID"] = f"<claim-{n}@insurer.example>"
    msg["Date"] = "Tue, 24 Nov 2026 09:00:00 +0000"
    msg.set_content(f"claim {n}")
    return msg.as_bytes(policy=email.policy.SMTP)


_NUMBER = b"8642097531"


@functools.cache
def _claim() -> bytes:
    claim = built(int(_NUMBER))
    assert claim.count(_NUMBER) == 3, "the number only in Subject, Message-ID and text"
    return claim


def app_only(idp: IdentityProvider) -> dict[str, str]:
    """A Graph mailbox's ``oauth`` for the application (client credentials, GRAPH_APP)."""
    return {
        "grant_type": "client_credentials",
        "tenant_id": idp.tenant_id,
        "client_id": GRAPH_APP,
        "client_secret": GRAPH_SECRET,
    }


def configure_many(
    store: Store, idp: IdentityProvider, graph_url: str, out: Path, *boxes: dict[str, Any]
) -> None:
    """Graph mailboxes on the emulator at ``graph_url``, delivering to the folder ``out``:
    each of ``boxes`` gives a name and changes any field (app-only, ANNA's by default)."""
    apply_document(
        store,
        {
            "authorization_servers": [microsoft_at(idp.base_url)],
            "outputs": [{"name": "capture", "type": "folder", "path": str(out)}],
            "mailboxes": [
                {
                    "protocol": "graph",
                    "graph_url": graph_url,
                    "username": ANNA,
                    "output": "capture",
                    "oauth": app_only(idp),
                    **box,
                }
                for box in boxes
            ],
        },
        {},
    )


def configure(store: Store, idp: IdentityProvider, graph_url: str, out: Path, **box: Any) -> None:
    """The Graph mailbox "claims" (ANNA's, app-only unless ``oauth`` says otherwise) on the
    emulator at ``graph_url``, delivering to the folder ``out``; ``box`` adds or changes
    its fields."""
    configure_many(store, idp, graph_url, out, {"name": "claims", **box})


def app_token(idp: IdentityProvider) -> str:
    """An application token for Graph from the tenant (client credentials, GRAPH_APP)."""
    answer = http_clients.post(
        f"{idp.base_url}/{idp.tenant_id}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": GRAPH_APP,
            "client_secret": GRAPH_SECRET,
            "scope": "https://graph.microsoft.com/.default",
        },
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def delegated(idp: IdentityProvider) -> dict[str, str]:
    """A Graph mailbox's ``oauth`` for a person signing in (authorization code, NATIVE_APP)."""
    return {
        "grant_type": "authorization_code",
        "tenant_id": idp.tenant_id,
        "client_id": NATIVE_APP,
        "redirect_uri": "http://localhost/",
    }


def sign_in(store: Store, name: str = "claims") -> None:
    """ANNA signs in for the mailbox ``name`` through the tenant's pages."""
    authorize(TokenManager(store), name, interaction(Browser(ANNA, ANNA_PASSWORD)))
