"""The alerts section in the store (SQLite and PostgreSQL): applied, exported without
secrets in clear, applied back unchanged, replaced, pruned; secrets encrypted at rest."""

from __future__ import annotations

from typing import Any

from mailintake.services.apply import apply_document
from mailintake.services.export import export_document
from mailintake.settings import Settings
from mailintake.store import alert_settings
from mailintake.store.repo import Store
from tests.support.store import database_text

SMTP_PASSWORD = "sp-Wd7Kq2Ln9Xc4Rt6Bv1"
HOOK_TOKEN = "hk-Mj3Pz8Yt5Gs1Nf7Qa2"
HEADER_LITERAL = "hl-Ee4Uo9Ii2Aa6Yy1Oo3"
ENV = {"SMTP_PASSWORD": SMTP_PASSWORD, "HOOK_TOKEN": HOOK_TOKEN}


def alerts_document() -> dict[str, Any]:
    return {
        "alerts": {
            "states": ["failing", "expired"],
            "reminder_interval": 172800,
            "channels": [
                {
                    "name": "ops-hook",
                    "type": "webhook",
                    "url": "https://hooks.example.com/mail",
                    "headers": {
                        "Authorization": "Bearer ${env:HOOK_TOKEN}",
                        "X-Api-Key": HEADER_LITERAL,
                    },
                },
                {
                    "name": "ops-mail",
                    "type": "email",
                    "host": "smtp.example.com",
                    "security": "tls",
                    "username": "mailintake@example.com",
                    "password": "${env:SMTP_PASSWORD}",
                    "from": "mailintake@example.com",
                    "to": ["ops@example.com"],
                },
            ],
        }
    }


def actions(changes: list[Any]) -> list[str]:
    return [str(c) for c in changes]


def test_apply_export_and_apply_back(store: Store, settings: Settings) -> None:
    assert actions(apply_document(store, alerts_document(), ENV)) == ["alerts section: created"]
    assert actions(apply_document(store, alerts_document(), ENV)) == ["alerts section: unchanged"]
    with store.read() as repo:
        exported = export_document(repo)
        revealed = alert_settings.read(repo.conn, repo.box, reveal=True)
    channels = exported["alerts"]["channels"]
    assert channels[0]["headers"] == {
        "Authorization": "Bearer ${env:HOOK_TOKEN}",
        "X-Api-Key": "<redacted>",
    }
    assert channels[1]["password"] == "${env:SMTP_PASSWORD}"
    assert channels[1]["from"] == "mailintake@example.com"
    assert exported["alerts"]["states"] == ["failing", "expired"]
    assert revealed is not None
    assert revealed.channels[1].password is not None
    assert revealed.channels[1].password.get_secret_value() == SMTP_PASSWORD
    hook_headers = revealed.channels[0].headers or {}
    assert hook_headers["X-Api-Key"].get_secret_value() == HEADER_LITERAL
    assert hook_headers["Authorization"].get_secret_value() == f"Bearer {HOOK_TOKEN}"

    # the export applies back unchanged: <redacted> keeps the stored value
    assert actions(apply_document(store, exported, ENV)) == ["alerts section: unchanged"]
    dumped = database_text(store, settings) + repr(exported)
    assert "smtp.example.com" in dumped
    for secret in (SMTP_PASSWORD, HOOK_TOKEN, HEADER_LITERAL):
        assert secret not in dumped

    # a channel left out goes, with its secrets; without the section nothing changes
    smaller = alerts_document()
    smaller["alerts"]["channels"].pop(1)
    assert actions(apply_document(store, smaller, ENV)) == ["alerts section: updated"]
    assert actions(apply_document(store, {"mailboxes": []}, ENV)) == []
    with store.read() as repo:
        remaining = alert_settings.read(repo.conn, repo.box)
        owners = {owner for _, owner, _ in repo.context({}).stored_secrets}
    assert remaining is not None
    assert [c.name for c in remaining.channels] == ["ops-hook"]
    assert owners == {"ops-hook"}
    assert actions(apply_document(store, {"mailboxes": []}, ENV, prune=True)) == [
        "alerts section: deleted"
    ]
    with store.read() as repo:
        assert alert_settings.read(repo.conn, repo.box) is None
        assert repo.context({}).stored_secrets == frozenset()
