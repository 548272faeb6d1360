"""A condition that holds now: the interface between health (which finds them,
``mailintake.health.active_conditions``) and the alert channels (which tell a person)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Condition:
    key: str  # stable id: "health:<mailbox>", "expiry:<kind>:<mailbox>"
    mailbox: str | None
    kind: str  # "health" | "refresh_token" | "client_secret" | "certificate"
    state: str  # health: lagging|needs_a_person|failing; expiry: "expiring"|"expired"
    summary: str  # one line a person reads: what is wrong and what to do
    since: datetime  # UTC, when it began
    ends_at: datetime | None = None  # for expiry conditions
