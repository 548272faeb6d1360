"""Push: mail captured within seconds of its arrival instead of at the next interval. For
each IMAP mailbox with ``push: auto`` whose server offers IDLE, a worker keeps one
connection in IDLE (sources/imap_idle.py); when the server announces a new message the
mailbox is woken (``Scheduler.wake``: due at once) and the scheduler's next pass imports it.
The interval poll stays the safety net: push only starts passes sooner.

- One worker per mailbox: the connection is claimed in the store (store/push.py) under the
  scheduler's rules (heartbeats; a dead worker's claims are taken over).
- A budget of connections per worker (``connections``); mailboxes beyond it are polled at
  their interval only, or pushed by another worker with room.
- IDLE is issued again every ``renew_every`` seconds (RFC 2177 §3: at most 29 minutes); the
  connection signs in again with a new token before the one it signed in with is renewed
  (Exchange Online ends a session whose token expired); if Exchange ends one anyway (``BYE
  Session invalidated - AccessTokenExpired``), it signs in again at once with a new token,
  and that is no failure, unless the session it had just opened with a new token ends so
  too. A ``BYE``, a dropped connection or a server that stops answering reconnects after a
  back-off that grows with each failure.
  Every new connection wakes its mailbox once: what arrived while there was none is found.
- One thread waits on every connection at once (a selector), so idle connections cost no
  CPU; connections are opened (blocking: TLS, sign-in) by a few threads of their own, and
  the store is read and written by one more, so that a slow server or database never holds
  up the others.
"""

from __future__ import annotations

import contextlib
import math
import queue
import selectors
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mailintake.engine.push_claims import PushClaims
from mailintake.engine.scheduler import Scheduler
from mailintake.errors import MailintakeError
from mailintake.oauth.tokens import TokenManager
from mailintake.observability import metrics
from mailintake.observability.logging import get_logger
from mailintake.sources.imap import ImapSettings
from mailintake.sources.imap_idle import IDLING, IdleConnection, IdleUnsupported
from mailintake.store.repo import Store

log = get_logger(__name__)
DEFAULT_CONNECTIONS = 100
STABLE = 60.0  # seconds a connection must have lasted for its end not to count as a failure


def start_push(
    store: Store, tokens: TokenManager, scheduler: Scheduler, connections: int
) -> PushManager | None:
    """Push for ``scheduler``'s worker with a budget of ``connections`` (0: none), started
    once the worker's heartbeat is recorded: only a live worker claims (store/push.py)."""
    if connections <= 0:
        return None
    scheduler.beat()
    options = PushOptions(connections=connections)
    manager = PushManager(store, tokens, scheduler.wake, scheduler.id, options)
    manager.start()
    return manager


@dataclass(frozen=True)
class PushOptions:
    connections: int = DEFAULT_CONNECTIONS  # this worker's budget of push connections
    renew_every: float = 29 * 60.0  # seconds between two IDLE commands on a connection
    refresh_every: float = 10.0  # seconds between looks at the store (claims, settings)
    backoff: float = 1.0  # the first wait before connecting again after a failure
    max_backoff: float = 300.0
    unsupported_retry: float = 3600.0  # a server without IDLE is asked again after this
    connectors: int = 4  # connections opened at once


@dataclass
class _Box:
    """A mailbox whose push connection this worker holds."""

    name: str
    settings: ImapSettings
    connection: IdleConnection | None = None
    fd: int = -1  # the connection's, while the selector watches it
    opening: bool = False
    failures: int = 0
    retry_at: float = 0.0  # when to connect (again)
    since: float | None = None  # when the connection's IDLE began
    renew_at: float = math.inf
    resign_at: float = math.inf  # when to sign in again, ahead of the token's renewal
    token: str | None = None  # the access token the connection signed in with
    rejected: str | None = None  # one the server said had expired: the next gets a new one
    renewed: bool = False  # the connection's token replaced one the server said had expired


Connect = Callable[[ImapSettings, Callable[[], str], str], IdleConnection]


@dataclass
class PushManager:
    store: Store
    tokens: TokenManager
    wake: Callable[[str], object]  # Scheduler.wake
    worker: str  # this worker's id (its heartbeat is the scheduler's)
    options: PushOptions = field(default_factory=PushOptions)
    clock: Callable[[], float] = time.monotonic
    connect: Connect = IdleConnection
    sign_ins: dict[str, int] = field(default_factory=dict)  # connections that began IDLE
    _boxes: dict[str, _Box] = field(default_factory=dict)
    _unsupported: dict[str, float] = field(default_factory=dict)  # name: when to ask again
    _inbox: queue.SimpleQueue[tuple[Any, ...]] = field(default_factory=queue.SimpleQueue)
    _stop: threading.Event = field(default_factory=threading.Event)
    _refresh_at: float = 0.0
    _refreshing: bool = False
    _thread: threading.Thread | None = None
    _listening: int = 0  # connections in IDLE (read by other threads)
    _held: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        self._claims_store = PushClaims(self.store, self.worker, self.options.connections)
        self._selector = selectors.DefaultSelector()
        self._bell, self._bell_out = socket.socketpair()
        self._bell.setblocking(False)
        self._bell_out.setblocking(False)
        self._selector.register(self._bell, selectors.EVENT_READ, None)
        self._store_thread = ThreadPoolExecutor(1, thread_name_prefix="push-store")
        self._connectors = ThreadPoolExecutor(
            self.options.connectors, thread_name_prefix="push-connect"
        )

    # --- outside --------------------------------------------------------------------------

    def start(self) -> threading.Thread:
        metrics.IDLE_BUDGET.set(self.options.connections)
        self._thread = threading.Thread(target=self._run, name="push", daemon=True)
        self._thread.start()
        log.info("push.started", worker=self.worker, connections=self.options.connections)
        return self._thread

    def stop(self, timeout: float = 30.0) -> None:
        """Close every connection and let go of their claims."""
        self._stop.set()
        self._ring()
        if self._thread is not None:
            self._thread.join(timeout)

    def open_connections(self) -> int:
        """Connections in IDLE now."""
        return self._listening

    def held(self) -> frozenset[str]:
        """The mailboxes whose push connection this worker holds (open or not)."""
        return self._held

    # --- the loop -------------------------------------------------------------------------

    def _ring(self) -> None:
        with contextlib.suppress(OSError):  # full: the loop is being woken already
            self._bell_out.send(b"!")

    def _silence(self) -> None:
        with contextlib.suppress(OSError):  # nothing more to read
            while len(self._bell.recv(4096)) == 4096:
                pass

    def _post(self, *message: Any) -> None:
        self._inbox.put(message)
        self._ring()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                wait = self._tick(self.clock())
                for key, _events in self._selector.select(wait):
                    if key.data is None:
                        self._silence()
                    else:
                        self._readable(key.data)
                self._read_inbox()
        except Exception:  # a bug here must not stop the worker's polls
            log.exception("push.crashed", worker=self.worker)
        finally:
            self._shutdown()

    def _tick(self, now: float) -> float:
        """Do what is due; return how long to wait for the next due thing."""
        if now >= self._refresh_at and not self._refreshing:
            self._refreshing = True
            skipped = frozenset(n for n, until in self._unsupported.items() if until > now)
            self._store_thread.submit(self._refresh, skipped)
        soonest = now + self.options.refresh_every
        for box in list(self._boxes.values()):
            conn = box.connection
            if conn is None:
                if not box.opening and now >= box.retry_at:
                    self._open(box)
                elif not box.opening:
                    soonest = min(soonest, box.retry_at)
                continue
            if conn.overdue():
                self._ended(box, now)
                continue
            if conn.state == IDLING and now >= box.resign_at:
                log.info("push.sign_in_again", mailbox=box.name)
                self._close(box)
                box.retry_at = now
                soonest = now
                continue
            if conn.state == IDLING and now >= box.renew_at:
                conn.renew()
                box.renew_at = now + self.options.renew_every
                if conn.ended is not None:
                    self._ended(box, now)
                    continue
            soonest = min(soonest, box.renew_at, box.resign_at, conn.answer_by or math.inf)
        return max(0.0, soonest - now)

    def _open(self, box: _Box) -> None:
        box.opening = True
        self._connectors.submit(self._connect, box.name, box.settings, box.rejected)

    def _connect(self, name: str, settings: ImapSettings, rejected: str | None) -> None:
        """In a connecting thread: a token (a new one when the server said ``rejected``
        had expired), the connection, the IDLE command."""
        try:
            if rejected is not None:
                token = self.tokens.renew(name, force=True, rejected=rejected)
            else:
                token = self.tokens.current(name)
            conn = self.connect(settings, lambda: token.token, name)
            conn.open()
        except IdleUnsupported as exc:
            self._post("unsupported", name, str(exc))
        except MailintakeError as exc:
            self._post("failed", name, str(exc))
        except Exception as exc:
            log.exception("push.connect_crashed", mailbox=name)
            self._post("failed", name, f"{exc.__class__.__name__}: {exc}")
        else:
            left = (self.tokens.fresh_until(token) - datetime.now(UTC)).total_seconds()
            self._post("opened", name, settings, conn, self.clock() + left, token.token)

    def _readable(self, box: _Box) -> None:
        conn = box.connection
        if conn is None:
            return
        new = conn.read()
        if box.since is None and conn.state == IDLING:  # IDLE began: look for what came before
            now = box.since = self.clock()
            box.renew_at = now + self.options.renew_every
            self.sign_ins[box.name] = self.sign_ins.get(box.name, 0) + 1
            log.info("push.listening", mailbox=box.name)
            self._gauge()
            new += 1
        if new:
            self._store_thread.submit(self._wake, box.name)
        if conn.ended is not None:
            self._ended(box, self.clock())

    def _wake(self, name: str) -> None:
        try:
            self.wake(name)
        except Exception as exc:  # the database is away: the interval poll finds it
            log.warning("push.wake_failed", mailbox=name, error=str(exc))

    def _close(self, box: _Box) -> None:
        conn, box.connection = box.connection, None
        if conn is not None:
            self._selector.unregister(box.fd)
            conn.close()
        box.since, box.renew_at, box.resign_at = None, math.inf, math.inf
        self._gauge()

    def _ended(self, box: _Box, now: float) -> None:
        conn = box.connection
        why = conn.ended if conn is not None else None
        expired = conn is not None and conn.token_expired
        lasted = now - box.since if box.since is not None else 0.0
        self._close(box)
        if expired:  # the next sign-in gets a new token
            box.rejected = box.token
            if not box.renewed or lasted >= STABLE:  # not a new token's at once: no failure
                log.info("push.sign_in_again", mailbox=box.name, reason="the token expired")
                box.retry_at = now
                return
        self._failed(box, now, why or "ended", reset=lasted >= STABLE)

    def _failed(self, box: _Box, now: float, why: str, *, reset: bool = False) -> None:
        box.failures = 1 if reset else box.failures + 1
        wait = min(self.options.backoff * 2 ** (box.failures - 1), self.options.max_backoff)
        box.retry_at = now + wait
        log.info("push.reconnect", mailbox=box.name, reason=why[:300], after=round(wait, 1))

    def _gauge(self) -> None:
        self._listening = sum(1 for box in self._boxes.values() if box.since is not None)
        self._held = frozenset(self._boxes)
        metrics.IDLE_CONNECTIONS.set(self._listening)

    # --- what the other threads report --------------------------------------------------

    def _read_inbox(self) -> None:
        while True:
            try:
                message = self._inbox.get_nowait()
            except queue.Empty:
                return
            kind, *rest = message
            if kind == "opened":
                self._opened(*rest)
            elif kind == "claims":
                self._claims(*rest)
            else:
                box = self._boxes.get(rest[0])
                if box is not None:
                    box.opening = False
                    if kind == "unsupported":
                        self._unsupported[box.name] = self.clock() + self.options.unsupported_retry
                        log.info("push.unavailable", mailbox=box.name, reason=rest[1])
                        del self._boxes[box.name]
                        self._gauge()
                        self._store_thread.submit(self._release, [box.name])
                    else:
                        self._failed(box, self.clock(), rest[1])

    def _opened(
        self,
        name: str,
        settings: ImapSettings,
        conn: IdleConnection,
        resign_at: float,
        token: str,
    ) -> None:
        box = self._boxes.get(name)
        if box is None or box.settings != settings or self._stop.is_set():
            conn.close()  # let go of, or changed, while it connected
            if box is not None:
                box.opening = False
            return
        box.opening, box.connection, box.resign_at = False, conn, resign_at
        box.token, box.renewed, box.rejected = token, box.rejected is not None, None
        box.fd = conn.fileno()
        self._selector.register(box.fd, selectors.EVENT_READ, box)
        self._readable(box)  # the server may have answered IDLE already

    def _claims(self, wanted: dict[str, ImapSettings] | None) -> None:
        self._refreshing = False
        self._refresh_at = self.clock() + self.options.refresh_every
        if wanted is None:  # the store could not be read: keep what is held
            return
        for name in list(self._boxes):
            box = self._boxes[name]
            if wanted.get(name) != box.settings:  # let go of, or its settings changed
                self._close(box)
                del self._boxes[name]
        for name, settings in wanted.items():
            if name not in self._boxes:
                self._boxes[name] = _Box(name, settings, retry_at=self.clock())
        self._gauge()

    # --- the store (its own thread) -------------------------------------------------------

    def _refresh(self, skipped: frozenset[str]) -> None:
        try:
            wanted = self._claims_store.refresh(skipped)
        except Exception as exc:  # the database is away: keep what is held, look again later
            log.warning("push.refresh_failed", error=str(exc))
            self._post("claims", None)
        else:
            self._post("claims", wanted)

    def _release(self, names: list[str] | None) -> None:
        try:
            self._claims_store.release(names)
        except Exception as exc:  # taken over once this worker's heartbeat stops
            log.warning("push.release_failed", error=str(exc))

    def _shutdown(self) -> None:
        for box in list(self._boxes.values()):
            self._close(box)
        self._boxes.clear()
        self._gauge()
        self._connectors.shutdown(wait=True, cancel_futures=True)
        self._read_inbox_closing()
        self._store_thread.submit(self._release, None)
        self._store_thread.shutdown(wait=True)
        self._selector.close()
        self._bell.close()
        self._bell_out.close()
        log.info("push.stopped", worker=self.worker)

    def _read_inbox_closing(self) -> None:
        """Connections opened while stopping are closed."""
        while not self._inbox.empty():  # the connecting threads have ended: none comes now
            message = self._inbox.get_nowait()
            if message[0] == "opened":
                message[3].close()
