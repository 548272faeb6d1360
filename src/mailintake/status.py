"""The per-mailbox status rows shared by ``mailintake status`` and ``GET /api/v1/status``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from mailintake.config.resolve import DEFAULT_POLL_INTERVAL
from mailintake.health import assess_now
from mailintake.health.expiry import Expiry, expiries
from mailintake.health.rules import mailbox_waits_for_a_person
from mailintake.store import graph_subscriptions, import_views, imports, schedule, workers
from mailintake.store.health import facts
from mailintake.store.repo import Repo

ZERO = {"imported": 0, "failed": 0, "pending": 0, "parked": 0, "skipped": 0}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _next_ends(found: list[Expiry], now: datetime) -> dict[str, dict[str, Any]]:
    """Per mailbox, its earliest known end: kind, when, expiring/expired/None, what to do."""
    earliest: dict[str, Expiry] = {}
    for e in found:
        if e.mailbox not in earliest or e.ends_at < earliest[e.mailbox].ends_at:
            earliest[e.mailbox] = e
    return {
        name: {
            "kind": e.kind,
            "ends_at": e.ends_at.isoformat(),
            "state": e.state(now),
            "detail": e.what,
            "action": e.action,
        }
        for name, e in earliest.items()
    }


def _subscription(found: graph_subscriptions.Subscription | None) -> dict[str, Any] | None:
    if found is None:
        return None
    return {
        "id": found.subscription_id,  # None: Graph removed it; it is being created again
        "folder": found.folder,
        "expires_at": _iso(found.expires_at),
        "notification_url": found.notification_url,
    }


def mailbox_status(repo: Repo, now: datetime | None = None) -> list[dict[str, Any]]:
    now = now or datetime.now(UTC)
    counts = import_views.counts(repo.conn)
    health = {a.mailbox: a for a in assess_now(repo.conn, now)}
    polls = {f.name: f for f in facts(repo.conn)}
    ends = _next_ends(expiries(repo), now)
    subscriptions = graph_subscriptions.listed(repo.conn)
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
            # healthy | lagging | needs_a_person | failing | disabled, why, since, what to do
            "health": str(health[r.spec.name].health),
            "health_reason": health[r.spec.name].reason,
            "health_since": _iso(health[r.spec.name].since),
            "health_action": health[r.spec.name].action or None,
            "last_success_at": _iso(polls[r.spec.name].last_success_at),
            "failures_in_a_row": polls[r.spec.name].failures_in_a_row,
            # the earliest known end (refresh token, client secret, certificate), if any
            "next_expiry": ends.get(r.spec.name),
            # Graph change notifications: the subscription kept for it (None: none)
            "graph_subscription": _subscription(subscriptions.get(r.spec.name)),
            **counts.get(r.spec.name, ZERO),
            # what could not be imported and waits for its next try or a person
            "failed_messages": import_views.problems(
                repo.conn, r.spec.name, statuses=(imports.FAILED, imports.PARKED), limit=20
            ),
        }
        for r in repo.list_mailboxes()
    ]


def scheduling_status(repo: Repo, now: datetime | None = None) -> dict[str, Any]:
    """The workers, and whether mailboxes are polled at their intervals; when they are
    not, a sentence that says why (``problem``; None when all is well)."""
    now = now or datetime.now(UTC)
    found = workers.listed(repo.conn)
    live = [w for w in found if w.heartbeat_at >= now - workers.DEAD_AFTER]
    overdue = []
    for due in schedule.listed(repo.conn):
        mailbox = due.schedule
        if not mailbox.enabled or due.next_poll_at is None or mailbox_waits_for_a_person(mailbox):
            continue
        interval = float(mailbox.poll_interval or DEFAULT_POLL_INTERVAL)
        if (now - due.next_poll_at).total_seconds() > interval:
            overdue.append(mailbox.name)
    slots = sum(w.concurrency for w in live)
    busy = sum(w.running for w in live)
    problem = None
    if not live:
        problem = (
            "no worker running: mailboxes are not polled until `mailintake worker` or "
            "`mailintake serve` runs"
        )
    elif overdue and busy >= slots:
        problem = (
            f"{len(overdue)} mailbox(es) overdue by more than one interval: all {slots} "
            "slots busy (add workers or raise --concurrency)"
        )
    elif overdue:
        problem = (
            f"{len(overdue)} mailbox(es) overdue by more than one interval although "
            f"{slots - busy} of {slots} slots are free: the workers cannot reach the "
            "database often enough, or their polls are refused (another poll holds them)"
        )
    return {
        "workers": [
            {
                "id": w.id,
                "host": w.host,
                "started_at": w.started_at.isoformat(),
                "heartbeat_at": w.heartbeat_at.isoformat(),
                "alive": w in live,
                "concurrency": w.concurrency,
                "running": w.running,
            }
            for w in found
        ],
        "overdue": overdue,
        "problem": problem,
    }
