"""Mailbox health from real polls (the Graph emulator and the sandbox identity provider),
warnings ahead of known ends (a refresh token near its limit, a client secret's date, a real
certificate's notValidAfter), the keep-alive refresh of a disabled mailbox, and the gauges."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from mailintake.engine.poll import Poller
from mailintake.health import active_conditions, gauge_source, refresh
from mailintake.health.keepalive import HealthLoop, due_for_keep_alive, keep_alive
from mailintake.oauth.authorize import Interaction, authorize
from mailintake.oauth.tokens import TokenManager
from mailintake.observability import metrics
from mailintake.services.apply import apply_document
from mailintake.status import mailbox_status
from mailintake.store.repo import Store
from mailintake.web.ui.tokens_view import token_info
from sandbox.graph import GraphEmulator
from sandbox.idp import IdentityProvider
from tests.support.certs import pem_certificate, pem_key, rsa_key, self_signed
from tests.support.oauth import (
    ANNA,
    ANNA_PASSWORD,
    CERT_APP,
    GRAPH_APP,
    GRAPH_SECRET,
    NATIVE_APP,
    OLD_SECRET,
    Browser,
    microsoft_at,
)

NOW = dt.datetime.now(dt.UTC)


def app_only(secret: str = GRAPH_SECRET, **extra: Any) -> dict[str, Any]:
    return {
        "grant_type": "client_credentials",
        "tenant_id": "0b6a6d2e-1234-4c1e-9b5e-123456789abc",
        "client_id": GRAPH_APP,
        "client_secret": secret,
        **extra,
    }


def configure(store: Store, idp: IdentityProvider, tmp: Path, *boxes: dict[str, Any]) -> None:
    apply_document(
        store,
        {
            "authorization_servers": [microsoft_at(idp.base_url)],
            "outputs": [{"name": "capture", "type": "folder", "path": str(tmp / "out")}],
            "mailboxes": [
                {"protocol": "graph", "output": "capture", "username": ANNA, **box} for box in boxes
            ],
        },
        {},
    )


def row(store: Store, name: str) -> dict[str, Any]:
    with store.read() as repo:
        return next(r for r in mailbox_status(repo) if r["name"] == name)


def test_failing_after_three_failed_polls_and_healthy_after_a_success(
    store: Store, home: Path, tmp_path: Path, idp: IdentityProvider, graph: GraphEmulator
) -> None:
    address = f"claims-{tmp_path.name[-8:]}@contoso.onmicrosoft.com"
    configure(
        store,
        idp,
        tmp_path,
        {"name": "claims", "graph_url": graph.base_url, "username": address, "oauth": app_only()},
    )
    poller = Poller(store, home)
    for attempt in (1, 2):
        assert poller.poll("claims").error is not None  # Graph: no such user yet
        assert (row(store, "claims")["health"], row(store, "claims")["failures_in_a_row"]) == (
            "healthy",
            attempt,
        )
    assert poller.poll("claims").error is not None
    failing = row(store, "claims")
    assert failing["health"] == "failing"
    assert failing["failures_in_a_row"] == 3
    assert "3 polls in a row failed" in failing["health_reason"]
    assert "ErrorInvalidUser" in failing["health_reason"] or address in failing["health_reason"]
    conditions = [c for c in active_conditions(store, dt.datetime.now(dt.UTC))]
    health = [c for c in conditions if c.key == "health:claims"]
    assert [(c.kind, c.state, c.mailbox) for c in health] == [("health", "failing", "claims")]
    assert health[0].since.isoformat() == failing["health_since"]

    graph.add_mailbox(address)
    result = poller.poll("claims")
    assert result.error is None
    healthy = row(store, "claims")
    assert (healthy["health"], healthy["failures_in_a_row"]) == ("healthy", 0)
    assert healthy["last_success_at"] is not None
    assert not [
        c for c in active_conditions(store, dt.datetime.now(dt.UTC)) if c.mailbox == "claims"
    ]


def test_needs_a_person_after_a_refusal(
    store: Store, home: Path, tmp_path: Path, idp: IdentityProvider, graph: GraphEmulator
) -> None:
    configure(
        store,
        idp,
        tmp_path,
        {"name": "old", "graph_url": graph.base_url, "oauth": app_only(OLD_SECRET)},
    )
    result = Poller(store, home).poll("old")
    assert result.state is not None
    status = row(store, "old")
    assert status["health"] == "needs_a_person"
    assert "7000222" in status["health_reason"]  # the client secret expired
    assert status["health_action"]
    (condition,) = [c for c in active_conditions(store, dt.datetime.now(dt.UTC))]
    assert (condition.key, condition.state) == ("health:old", "needs_a_person")
    assert "7000222" in condition.summary


def signed_in(store: Store, idp: IdentityProvider, tmp: Path, **box: Any) -> TokenManager:
    configure(
        store,
        idp,
        tmp,
        {
            "name": "user",
            "oauth": {
                "grant_type": "authorization_code",
                "tenant_id": idp.tenant_id,
                "client_id": NATIVE_APP,
                "redirect_uri": "http://localhost/",
            },
            **box,
        },
    )
    manager = TokenManager(store)
    browser = Browser(ANNA, ANNA_PASSWORD)
    authorize(
        manager,
        "user",
        Interaction(show=lambda _: None, open_url=browser.sign_in, ask=lambda _: "", timeout=30),
    )
    return manager


def test_a_refresh_token_near_its_inactivity_limit(
    store: Store, tmp_path: Path, idp: IdentityProvider
) -> None:
    signed_in(store, idp, tmp_path)
    now = dt.datetime.now(dt.UTC)
    assert [c for c in active_conditions(store, now) if c.kind == "refresh_token"] == []
    later = now + dt.timedelta(days=80)  # Microsoft: 90 days without use, warned 14 ahead
    (expiring,) = [c for c in active_conditions(store, later) if c.kind == "refresh_token"]
    assert (expiring.key, expiring.state) == ("expiry:refresh_token:user", "expiring")
    assert expiring.ends_at is not None
    assert dt.timedelta(days=89) < expiring.ends_at - now <= dt.timedelta(days=90)
    assert expiring.since == expiring.ends_at - dt.timedelta(days=14)
    assert "90 days without use" in expiring.summary
    with store.read() as repo:  # the mailbox's page and card say the same
        assert token_info(repo, "user", now)["refresh_warning"] is None
        card = token_info(repo, "user", later)
    assert card["refresh_dies_at"] == expiring.ends_at
    assert "90 days without use" in card["refresh_warning"]
    dead = now + dt.timedelta(days=91)
    (expired,) = [c for c in active_conditions(store, dead) if c.kind == "refresh_token"]
    assert expired.state == "expired"
    assert row(store, "user")["next_expiry"]["kind"] == "refresh_token"


def test_a_client_secret_date_and_a_real_certificate(
    store: Store, tmp_path: Path, idp: IdentityProvider
) -> None:
    key = rsa_key()
    ends = NOW.replace(microsecond=0) + dt.timedelta(days=10)
    cert = tmp_path / "app.pem"
    cert.write_bytes(pem_certificate(self_signed(key, not_after=ends)) + pem_key(key))
    expires = (NOW + dt.timedelta(days=30)).date()
    configure(
        store,
        idp,
        tmp_path,
        {"name": "secret", "oauth": app_only(client_secret_expires=expires.isoformat())},
        {
            "name": "certified",
            "oauth": {
                "grant_type": "client_credentials",
                "tenant_id": idp.tenant_id,
                "client_id": CERT_APP,
                "client_certificate": str(cert),
            },
        },
    )
    now = dt.datetime.now(dt.UTC)
    found = {c.key: c for c in active_conditions(store, now)}
    assert set(found) == {"expiry:certificate:certified"}  # 10 days: inside the 14
    certificate_end = found["expiry:certificate:certified"]
    assert certificate_end.ends_at == ends
    assert certificate_end.state == "expiring"
    assert str(cert) in certificate_end.summary
    in_20_days = now + dt.timedelta(days=20)
    found = {c.key: c for c in active_conditions(store, in_20_days)}
    assert found["expiry:certificate:certified"].state == "expired"
    secret = found["expiry:client_secret:secret"]
    assert secret.state == "expiring"
    assert secret.ends_at == dt.datetime.combine(expires, dt.time(0), tzinfo=dt.UTC)
    assert "oauth.client_secret_expires" in secret.summary
    # the gauges, read from the store on a scrape
    metrics.watch_health(gauge_source(store))
    try:
        text = metrics.render().decode()
    finally:
        metrics.watch_health(None)
    lines = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }
    cert_seconds = lines['mailintake_expiry_seconds{kind="certificate",mailbox="certified"}']
    assert 9 * 86400 < cert_seconds <= 10 * 86400
    assert lines["mailintake_earliest_expiry_seconds"] == pytest.approx(cert_seconds, abs=60)
    assert 'mailintake_expiry_seconds{kind="client_secret",mailbox="secret"}' in lines
    assert lines['mailintake_mailboxes{health="healthy"}'] == 2.0
    assert lines['mailintake_mailboxes{health="failing"}'] == 0.0


def test_keep_alive_refreshes_a_disabled_authorized_mailbox(
    store: Store, tmp_path: Path, idp: IdentityProvider
) -> None:
    manager = signed_in(store, idp, tmp_path, enabled=False)
    with store.read() as repo:
        before = repo.grant("user")
    assert before is not None
    assert before.refresh_token is not None
    now = dt.datetime.now(dt.UTC)
    assert due_for_keep_alive(store, now) == []  # just used
    assert refresh(store, now)[0].health == "disabled"
    half_gone = now + dt.timedelta(days=46)
    idp.reset_counters()
    HealthLoop(store, manager, clock=lambda: now).check()  # not due: nothing is sent
    assert idp.token_requests == []
    assert keep_alive(store, manager, half_gone) == ["user"]
    refreshes = [r for r in idp.token_requests if r["grant_type"] == "refresh_token"]
    assert [r["client_id"] for r in refreshes] == [NATIVE_APP]
    with store.read() as repo:
        after = repo.grant("user")
    assert after is not None
    assert after.refresh_token is not None
    assert after.refresh_token != before.refresh_token  # the rotated one is stored
    assert after.refresh_obtained_at is not None
    assert before.refresh_obtained_at is not None
    assert after.refresh_obtained_at > before.refresh_obtained_at  # the limit restarts
    with store.read() as repo:
        assert repo.get_mailbox("user").auth_state == "authorized"


def test_the_end_of_a_pkcs12_certificate_with_its_password(
    store: Store, tmp_path: Path, idp: IdentityProvider
) -> None:
    from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12

    key = rsa_key()
    ends = NOW.replace(microsecond=0) + dt.timedelta(days=3)
    bundle = pkcs12.serialize_key_and_certificates(
        b"app",
        key,
        self_signed(key, not_after=ends),
        None,
        BestAvailableEncryption(b"pfx-Password-1"),
    )
    pfx = tmp_path / "app.pfx"
    pfx.write_bytes(bundle)
    configure(
        store,
        idp,
        tmp_path,
        {
            "name": "certified",
            "oauth": {
                "grant_type": "client_credentials",
                "tenant_id": idp.tenant_id,
                "client_id": CERT_APP,
                "client_certificate": str(pfx),
                "client_certificate_password": "pfx-Password-1",
            },
        },
    )
    (end,) = active_conditions(store, dt.datetime.now(dt.UTC))
    assert (end.key, end.state, end.ends_at) == ("expiry:certificate:certified", "expiring", ends)
    assert "pfx-Password-1" not in end.summary
