"""Keep-alive refreshes and the periodic health check.

A refresh token that dies of inactivity (Microsoft: 90 days, Google: six months; see
health/expiry.py) is kept alive by using it: a mailbox that is disabled or idle but
authorized gets a refresh once more than half of its limit has passed since the token was
last used. The refresh goes through the token code (oauth/tokens.py), which stores the
rotated refresh token; a refusal there sets the authorization state, which health shows.

``HealthLoop`` runs both every few minutes beside the scheduler (``mailintake serve``, a
worker)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from mailintake.enums import AuthState
from mailintake.errors import MailintakeError
from mailintake.health import refresh
from mailintake.health.expiry import mailbox_limit, refresh_ends_at
from mailintake.oauth.tokens import TokenManager
from mailintake.observability.logging import get_logger
from mailintake.store.health import facts, grant_ages
from mailintake.store.repo import Store

log = get_logger(__name__)
KEEP_ALIVE_AFTER = 0.5  # of the inactivity limit
CHECK_PERIOD = 300.0  # seconds between health checks and keep-alive rounds


def due_for_keep_alive(store: Store, now: datetime) -> list[str]:
    """Authorized mailboxes whose refresh token has gone unused for more than half of its
    inactivity limit (only limits counted from the last use: a use moves them)."""
    with store.read() as repo:
        servers = {s.name: s for s in repo.list_servers()}
        grants = {g.mailbox: g for g in grant_ages(repo.conn)}
        rows = facts(repo.conn)
    due = []
    for f in rows:
        grant = grants.get(f.name)
        if grant is None or not grant.has_refresh_token or f.auth_state != AuthState.AUTHORIZED:
            continue
        limit = mailbox_limit(f, servers)
        if limit is None or not limit.sliding:
            continue
        half_gone = now - grant.used_at >= limit.lifetime * KEEP_ALIVE_AFTER
        if half_gone and now < refresh_ends_at(limit, grant):  # not a dead one, in vain
            due.append(f.name)
    return due


def keep_alive(store: Store, tokens: TokenManager, now: datetime) -> list[str]:
    """Refresh the tokens of the mailboxes due for it; returns those refreshed."""
    done = []
    for name in due_for_keep_alive(store, now):
        try:
            tokens.renew(name, force=True)
        except MailintakeError as exc:
            log.warning("health.keep_alive_failed", mailbox=name, error=str(exc))
            continue
        log.info("health.keep_alive", mailbox=name)
        done.append(name)
    return done


@dataclass
class HealthLoop:
    """Every ``period`` seconds: record each mailbox's health, refresh idle tokens."""

    store: Store
    tokens: TokenManager
    period: float = CHECK_PERIOD
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    _stop: threading.Event = field(default_factory=threading.Event)

    def check(self) -> None:
        now = self.clock()
        refresh(self.store, now)
        keep_alive(self.store, self.tokens, now)

    def run_forever(self) -> None:
        while not self._stop.is_set():
            try:
                self.check()
            except Exception as exc:  # the database went away: try again next period
                log.error("health.check_failed", error=str(exc))
            self._stop.wait(self.period)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run_forever, name="health", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()
