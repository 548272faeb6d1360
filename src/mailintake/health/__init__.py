"""Every mailbox's health, and warnings ahead of every known end.

``refresh(store, now)`` decides each mailbox's health (rules.py) and records it when it
changed, keeping when it began; ``active_conditions(store, now)`` lists what holds now for
the alert channels (mailintake.alerts.conditions.Condition); ``snapshot(store, now)`` gives
the numbers the metrics collector exposes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection

from mailintake.alerts.conditions import Condition
from mailintake.enums import Health
from mailintake.health.expiry import Expiry, expiries
from mailintake.health.rules import Assessment, assess, worst_first
from mailintake.store import health as health_store
from mailintake.store.repo import Store

__all__ = [
    "Assessment",
    "Expiry",
    "Snapshot",
    "active_conditions",
    "assess_now",
    "gauge_source",
    "record",
    "refresh",
    "snapshot",
    "worst_first",
]
# Health states that are a condition (disabled is a choice, not a problem).
PROBLEMS = (Health.LAGGING, Health.NEEDS_PERSON, Health.FAILING)


def assess_now(conn: Connection, now: datetime, name: str | None = None) -> list[Assessment]:
    """Every mailbox's (or ``name``'s) health now, without recording it."""
    return [assess(f, now) for f in health_store.facts(conn, name)]


def record(conn: Connection, now: datetime, name: str | None = None) -> list[Assessment]:
    """Decide and record health in this transaction (a poll's outcome, a periodic check)."""
    found = []
    for f in health_store.facts(conn, name):
        a = assess(f, now)
        if f.health != a.health or f.health_since != a.since:
            health_store.set_health(conn, f.name, a.health, a.since)
        found.append(a)
    return found


def refresh(store: Store, now: datetime) -> list[Assessment]:
    with store.begin() as repo:
        return record(repo.conn, now)


def _health_condition(a: Assessment) -> Condition:
    what = f"; {a.action}" if a.action else ""
    return Condition(
        key=f"health:{a.mailbox}",
        mailbox=a.mailbox,
        kind="health",
        state=str(a.health),
        summary=f"{a.mailbox} is {a.health}: {a.reason}{what}",
        since=a.since,
    )


def _expiry_condition(e: Expiry, state: str) -> Condition:
    verb = "has ended" if state == "expired" else f"ends {e.ends_at:%Y-%m-%d %H:%M} UTC"
    return Condition(
        key=f"expiry:{e.kind}:{e.mailbox}",
        mailbox=e.mailbox,
        kind=e.kind,
        state=state,
        summary=f"{e.mailbox}: {e.what}; it {verb}: {e.action}",
        since=e.ends_at if state == "expired" else e.warned_from,
        ends_at=e.ends_at,
    )


def active_conditions(store: Store, now: datetime) -> list[Condition]:
    """Every condition that holds now (an empty list: all is well): mailboxes lagging,
    needing a person or failing, and ends inside their warning time or passed."""
    with store.begin() as repo:
        assessments = record(repo.conn, now)
        ends = expiries(repo)
    found = [_health_condition(a) for a in worst_first(assessments) if a.health in PROBLEMS]
    for e in sorted(ends, key=lambda e: (e.ends_at, e.mailbox, e.kind)):
        state = e.state(now)
        if state is not None:
            found.append(_expiry_condition(e, state))
    return found


@dataclass(frozen=True)
class Snapshot:
    """What the gauges show: mailboxes per health, seconds to each known end."""

    health: dict[str, int]
    expiry_seconds: list[tuple[str, str, float]]  # mailbox, kind, seconds (< 0: passed)


def snapshot(store: Store, now: datetime) -> Snapshot:
    with store.read() as repo:
        assessments = assess_now(repo.conn, now)
        ends = expiries(repo)
    counts = {str(h): 0 for h in Health}
    for a in assessments:
        counts[str(a.health)] += 1
    seconds = [(e.mailbox, e.kind, (e.ends_at - now).total_seconds()) for e in ends]
    return Snapshot(counts, seconds)


def gauge_source(store: Store) -> Callable[[], Snapshot]:
    """For ``metrics.watch_health``: the numbers now, read on each scrape."""
    return lambda: snapshot(store, datetime.now(UTC))
