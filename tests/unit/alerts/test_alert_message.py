"""An alert's JSON body (the documented keys) and its email subject and text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mailintake.alerts.message import AlertMessage

SINCE = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def expiring(event: str = "alert") -> AlertMessage:
    return AlertMessage(
        event=event,  # type: ignore[arg-type]
        key="expiry:client_secret:claims",
        mailbox="claims",
        kind="client_secret",
        state="expiring",
        summary="claims: the client secret ends 2026-12-10 09:00 UTC: add a new secret",
        since=SINCE,
        sent_at=SINCE + timedelta(hours=1),
        ends_at=SINCE + timedelta(days=9),
    )


def test_the_body_has_the_documented_keys() -> None:
    assert expiring().body() == {
        "event": "alert",
        "key": "expiry:client_secret:claims",
        "mailbox": "claims",
        "kind": "client_secret",
        "state": "expiring",
        "summary": "claims: the client secret ends 2026-12-10 09:00 UTC: add a new secret",
        "since": "2026-12-01T09:00:00+00:00",
        "ends_at": "2026-12-10T09:00:00+00:00",
        "sent_at": "2026-12-01T10:00:00+00:00",
        "product": "mailintake",
    }


def test_subjects_say_what_happened() -> None:
    assert expiring().subject() == "[mailintake] expiring: client secret of mailbox claims"
    assert expiring("reminder").subject() == (
        "[mailintake] still expiring: client secret of mailbox claims"
    )
    assert expiring("recovered").subject() == (
        "[mailintake] recovered: client secret of mailbox claims (was expiring)"
    )
    assert expiring("test").subject() == "[mailintake] test alert"


def test_the_text_leads_with_the_summary_then_every_key() -> None:
    text = expiring("recovered").text()
    lines = text.splitlines()
    assert lines[0] == "Recovered: client secret of mailbox claims is no longer expiring."
    assert lines[2] == expiring().summary
    assert "ends_at: 2026-12-10T09:00:00+00:00" in lines
    assert "event: recovered" in lines
