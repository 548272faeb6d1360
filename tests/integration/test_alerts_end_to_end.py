"""Alerts on real conditions: a Graph mailbox whose polls fail three times becomes failing,
which reaches the webhook receiver and the SMTP server once (and ``mailintake alerts`` lists
it); fixed, it is "recovered"."""

from __future__ import annotations

import json
from pathlib import Path

from mailintake.alerts.runner import alerter_for
from mailintake.engine.poll import Poller
from mailintake.services.apply import apply_document
from mailintake.settings import Settings
from mailintake.store.repo import Store
from sandbox.graph import GraphEmulator
from sandbox.idp import IdentityProvider
from tests.support.alerts import alerts_section
from tests.support.cli import run_in as run
from tests.support.http_receiver import Receiver
from tests.support.oauth import GRAPH_APP, GRAPH_SECRET, microsoft_at
from tests.support.smtp import SmtpServer


def test_a_failing_mailbox_alerts_once_and_recovers(
    store: Store,
    settings: Settings,
    home: Path,
    tmp_path: Path,
    idp: IdentityProvider,
    graph: GraphEmulator,
    hook: Receiver,
    smtp: SmtpServer,
) -> None:
    address = f"claims-{tmp_path.name[-8:]}@contoso.onmicrosoft.com"
    document = {
        "authorization_servers": [microsoft_at(idp.base_url)],
        "outputs": [{"name": "capture", "type": "folder", "path": str(tmp_path / "out")}],
        "mailboxes": [
            {
                "name": "claims",
                "protocol": "graph",
                "graph_url": graph.base_url,
                "username": address,
                "output": "capture",
                "oauth": {
                    "grant_type": "client_credentials",
                    "tenant_id": "0b6a6d2e-1234-4c1e-9b5e-123456789abc",
                    "client_id": GRAPH_APP,
                    "client_secret": GRAPH_SECRET,
                },
            }
        ],
        "alerts": alerts_section(hook, smtp),
    }
    apply_document(store, document, {"SMTP_PASSWORD": smtp.password})
    alerter = alerter_for(store)
    poller = Poller(store, home)
    for _ in range(2):
        assert poller.poll("claims").error is not None  # Graph: no such mailbox yet
        assert alerter.evaluate() == []  # one or two failed polls are no alert
    assert poller.poll("claims").error is not None
    sent = alerter.evaluate()
    assert sorted((o.channel, o.event, o.state, o.ok) for o in sent) == [
        ("ops-hook", "alert", "failing", True),
        ("ops-mail", "alert", "failing", True),
    ]
    [request] = hook.requests
    assert request.body["key"] == "health:claims"
    assert request.body["mailbox"] == "claims"
    assert "3 polls in a row failed" in request.body["summary"]
    [mail] = smtp.messages
    assert mail.message["Subject"] == "[mailintake] failing: mailbox claims"
    assert "3 polls in a row failed" in mail.message.get_content()

    assert poller.poll("claims").error is not None  # still failing: no second alert
    assert alerter.evaluate() == []
    listed = run(home, settings.database_url or "", "alerts", "--json")
    assert listed.returncode == 0, listed.stderr
    document = json.loads(listed.stdout)
    assert [(c["key"], c["state"], c["alerts"]) for c in document["conditions"]] == [
        ("health:claims", "failing", True)
    ]
    assert sorted((r["channel"], r["state"]) for r in document["sent"]) == [
        ("ops-hook", "failing"),
        ("ops-mail", "failing"),
    ]

    graph.add_mailbox(address)
    assert poller.poll("claims").error is None
    recovered = alerter.evaluate()
    assert sorted((o.channel, o.event, o.ok) for o in recovered) == [
        ("ops-hook", "recovered", True),
        ("ops-mail", "recovered", True),
    ]
    assert [r.body["event"] for r in hook.requests] == ["alert", "recovered"]
    assert [str(m.message["Subject"]) for m in smtp.messages] == [
        "[mailintake] failing: mailbox claims",
        "[mailintake] recovered: mailbox claims (was failing)",
    ]
    assert alerter.evaluate() == []
