"""The per-mailbox status rows shared by ``mailintake status`` and ``GET /api/v1/status``."""

from __future__ import annotations

from typing import Any

from mailintake.store import imports
from mailintake.store.repo import Repo

ZERO = {"imported": 0, "failed": 0, "pending": 0, "parked": 0, "skipped": 0}


def mailbox_status(repo: Repo) -> list[dict[str, Any]]:
    counts = imports.counts(repo.conn)
    return [
        {
            "name": r.spec.name,
            "protocol": str(r.spec.protocol),
            "enabled": r.spec.enabled is not False,
            "authorization_server": r.authorization_server,
            "grant_type": str(r.spec.oauth.grant_type) if r.spec.oauth else None,
            "authorization_state": r.auth_state,
            "authorization_detail": r.auth_detail,
            "last_poll_at": r.last_poll_at.isoformat() if r.last_poll_at else None,
            "last_error": r.last_error,
            "last_warning": r.last_warning,
            **counts.get(r.spec.name, ZERO),
            # what could not be imported and waits for its next try or a person
            "failed_messages": imports.problems(
                repo.conn, r.spec.name, statuses=(imports.FAILED, imports.PARKED), limit=20
            ),
        }
        for r in repo.list_mailboxes()
    ]
