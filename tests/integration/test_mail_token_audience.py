"""A token for the wrong resource at the mail server: Dovecot, like Exchange Online, refuses a
Graph token over IMAP and POP3 with nothing but "authentication failed", and mailintake's
check names the scopes to fix."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from mailintake.engine.check import check_mailbox
from mailintake.services.apply import apply_document
from mailintake.store.repo import Store
from tests.support.dovecot import DAEMON_APP, DAEMON_SECRET, DOMAIN, OUTLOOK_APP_SCOPE, MailServer

GRAPH_SCOPE = "https://graph.microsoft.com/.default"


def configure(
    store: Store, server: MailServer, protocol: str, scopes: list[str], user: str
) -> None:
    """A mailbox of the daemon application (client credentials) at an authorization server
    mailintake does not know as Microsoft's, so nothing checks its scopes before the mail
    server does."""
    base = f"{server.idp.base_url}/{server.idp.tenant_id}/oauth2/v2.0"
    dovecot = server.dovecot
    box: dict[str, Any] = {
        "name": "box",
        "protocol": protocol,
        "host": dovecot.host,
        "port": dovecot.imap_port if protocol == "imap" else dovecot.pop3_port,
        "security": "none",
        "username": user,
        "oauth": {
            "authorization_server": "LAB",
            "grant_type": "client_credentials",
            "client_id": DAEMON_APP,
            "client_secret": DAEMON_SECRET,
            "scopes": scopes,
        },
    }
    apply_document(
        store,
        {
            "authorization_servers": [
                {"name": "LAB", "token_endpoint": f"{base}/token"},
            ],
            "mailboxes": [box],
        },
        {},
    )


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_a_graph_token_is_refused_and_check_names_the_scope(
    store: Store, home: Path, mail_server: MailServer, protocol: str
) -> None:
    user = mail_server.add_user(f"aud-{uuid.uuid4().hex[:8]}@{DOMAIN}")
    mail_server.dovecot.add_delegate(DAEMON_APP, user)
    mail_server.dovecot.deliver(user, b"Subject: hi\r\n\r\nbody\r\n")
    right = OUTLOOK_APP_SCOPE
    configure(store, mail_server, protocol, [GRAPH_SCOPE], user)
    result = check_mailbox(store, "box")
    steps = {step["step"]: step for step in result.steps}
    assert steps["token"]["ok"]  # the identity provider gave a token: for Graph
    assert not result.ok
    assert not steps["sign-in"]["ok"]
    detail = str(steps["sign-in"]["detail"])
    assert "https://graph.microsoft.com" in detail
    assert right in detail  # the scope to put in oauth.scopes
    assert "oauth.scopes" in detail
    # With the right scope the same mailbox signs in.
    configure(store, mail_server, protocol, [right], user)
    again = check_mailbox(store, "box")
    assert again.ok, again.steps
