"""The key of the application a client-credentials token is shared under."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from mailintake.config.matrix import Grant
from mailintake.crypto import SecretBox, generate_key
from mailintake.oauth.mailbox_auth import MailboxAuth

SECRET = "app-secret-Value~123"


def app(**changes: object) -> MailboxAuth:
    auth = MailboxAuth(
        mailbox="claims",
        grant=Grant.CLIENT_CREDENTIALS,
        server="MICROSOFT",
        username="claims@contoso.com",
        authorization_endpoint=None,
        token_endpoint="https://login.microsoftonline.com/contoso/oauth2/v2.0/token",
        device_authorization_endpoint=None,
        scopes=("https://graph.microsoft.com/.default",),
        tenant="contoso",
        client_id="11111111-2222-3333-4444-555555555555",
        redirect_uri=None,
        client_secret=SECRET,
    )
    return dataclasses.replace(auth, **changes)  # type: ignore[arg-type]


def test_mailboxes_of_one_application_share_its_key() -> None:
    box = SecretBox([generate_key()])
    key = app().app_key(box)
    assert app(mailbox="other", username="other@contoso.com").app_key(box) == key
    assert app().shared
    assert not app(grant=Grant.AUTHORIZATION_CODE).shared


def test_every_part_of_the_application_changes_the_key() -> None:
    box = SecretBox([generate_key()])
    key = app().app_key(box)
    others = [
        app(client_secret="another-secret"),
        app(client_id="99999999-2222-3333-4444-555555555555"),
        app(tenant="fabrikam"),
        app(token_endpoint="https://login.microsoftonline.com/fabrikam/oauth2/v2.0/token"),
        app(scopes=("https://outlook.office365.com/.default",)),
    ]
    assert len({key, *(o.app_key(box) for o in others)}) == 1 + len(others)


def test_a_certificate_is_known_by_its_content(tmp_path: Path) -> None:
    box = SecretBox([generate_key()])
    cert = tmp_path / "app.pem"
    cert.write_text("first certificate")
    first = app(client_secret=None, certificate=str(cert)).app_key(box)
    assert first != app().app_key(box)
    cert.write_text("renewed certificate")
    assert app(client_secret=None, certificate=str(cert)).app_key(box) != first


def test_the_key_reveals_no_secret_without_the_store_key() -> None:
    one, two = SecretBox([generate_key()]), SecretBox([generate_key()])
    key = app().app_key(one)
    assert SECRET not in key
    assert key != app().app_key(two)  # a keyed hash: not a plain hash anyone could redo
    assert len(key) == 64
