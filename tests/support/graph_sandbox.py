"""The Graph emulator's own tests (tests/sandbox) drive it over HTTP as a client would, on a
tenant of their own (the fixtures of tests/sandbox/conftest.py): its names and secrets,
tokens from its identity provider (``app_token``, ``user_token``), messages (``mime``), and
the error code of an answer (``error_code``)."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any

import httpx2

from sandbox import http_clients
from sandbox.idp import IdentityProvider

TENANT = "0b6a6d2e-1234-4c1e-9b5e-123456789abc"


DOMAIN = "contoso.onmicrosoft.com"


APP = "a0000000-0000-4000-8000-00000000000a"


READ_APP = "b0000000-0000-4000-8000-00000000000b"


NATIVE_APP = "d0000000-0000-4000-8000-00000000000d"


SECRET = "graph-app-secret-Value~123"
ANNA, BORIS, CARLA = (f"{name}@{DOMAIN}" for name in ("anna", "boris", "carla"))


PASSWORD = "Password-1!"


GRAPH = "https://graph.microsoft.com"


SHARED_SCOPES = f"{GRAPH}/Mail.ReadWrite {GRAPH}/Mail.ReadWrite.Shared"


IMMUTABLE = {"Prefer": 'IdType="ImmutableId"'}


def _token(idp: IdentityProvider, **form: str) -> str:
    answer = http_clients.post(f"{idp.base_url}/{TENANT}/oauth2/v2.0/token", data=form, timeout=10)
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["access_token"]
    return token


def app_token(idp: IdentityProvider, client_id: str = APP, resource: str = GRAPH) -> str:
    """An application token (client credentials) for ``resource``."""
    return _token(
        idp,
        grant_type="client_credentials",
        client_id=client_id,
        client_secret=SECRET,
        scope=f"{resource}/.default",
    )


def user_token(idp: IdentityProvider, username: str, scope: str = SHARED_SCOPES) -> str:
    """A user's token (ROPC, NATIVE_APP) for ``scope``."""
    return _token(
        idp,
        grant_type="password",
        client_id=NATIVE_APP,
        username=username,
        password=PASSWORD,
        scope=scope,
    )


def mime(number: int, *, attachment: bytes | None = None) -> bytes:
    """Invoice ``number``, with a PDF attached when ``attachment`` is given."""
    message = EmailMessage()
    message["From"] = "Billing <billing@fabrikam.example>"
    message["To"] = "ap@contoso.example"
    message["Subject"] = f"Invoice {number:03d}"
    message["Message-ID"] = f"<invoice-{number}@fabrikam.example>"
    message.set_content(f"Invoice {number:03d} is attached.\r\n")
    if attachment is not None:
        message.add_attachment(
            attachment, maintype="application", subtype="pdf", filename="invoice.pdf"
        )
    return message.as_bytes()


def error_code(answer: httpx2.Response) -> str:
    """The Graph error code of ``answer``, checking the error has its innerError fields."""
    body: dict[str, Any] = answer.json()
    code: str = body["error"]["code"]
    assert {"date", "request-id", "client-request-id"} <= set(body["error"]["innerError"])
    return code
