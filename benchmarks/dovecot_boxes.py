"""Mailboxes on the benchmarks' Dovecot (sandbox.dovecot), read with the daemon application's
token (client credentials of DAEMON_APP, a delegate of the mailbox) and keeping their
messages, so that a measurement can be repeated on the same mail."""

from __future__ import annotations

from typing import Any

from sandbox.dovecot import DAEMON_APP, DAEMON_SECRET


def daemon_grant(tenant: str) -> dict[str, str]:
    """A mailbox's ``oauth`` section: DAEMON_APP's client credentials on ``tenant``."""
    return {
        "authorization_server": "MICROSOFT",
        "grant_type": "client_credentials",
        "tenant_id": tenant,
        "client_id": DAEMON_APP,
        "client_secret": DAEMON_SECRET,
    }


def daemon_mailbox(
    name: str, protocol: str, port: int, user: str, tenant: str, **fields: Any
) -> dict[str, Any]:
    """The mailbox ``name``: ``user``'s over ``protocol`` on 127.0.0.1:``port`` (no TLS),
    delivering to the output "out" and keeping what it imports; ``fields`` change any."""
    return {
        "name": name,
        "protocol": protocol,
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "username": user,
        "output": "out",
        "after_import": "keep",
        "oauth": daemon_grant(tenant),
        **fields,
    }
