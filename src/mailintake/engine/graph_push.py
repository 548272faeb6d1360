"""Graph change notifications for the mailboxes that want them: one subscription per Graph
mailbox with ``push: auto`` (its folder), created, renewed before it expires, created again
when Graph removed it, deleted when push is turned off or the mailbox goes.

Which process keeps them: every ``mailintake serve`` started with a public URL
(``MAILINTAKE_PUBLIC_URL``), since that is where Graph's notifications arrive; workers do
not. Several serve processes on one database (behind one public URL) each run a
``GraphPush``, and each subscription has exactly one keeper at a time: its work is done
holding the store lock ``graph-push:<mailbox>`` (store.locks: a PostgreSQL advisory lock, a
lock file on SQLite), taken without waiting, after reading its state again. Whoever finds
it held leaves that mailbox to the holder.

A subscription only starts passes sooner: the poll interval stays the safety net. After a
subscription is created (again) the mailbox is due at once, for what arrived without one
(concepts/change-notifications-lifecycle-events.md, "subscriptionRemoved")."""

from __future__ import annotations

import contextlib
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol, TypeVar

from mailintake.config import resolve
from mailintake.config.models import MailboxSpec
from mailintake.engine.factories import build_graph_subscriptions
from mailintake.errors import MailintakeError, NotFound, TransientError
from mailintake.health.rules import mailbox_waits_for_a_person
from mailintake.oauth.tokens import TokenManager
from mailintake.observability.logging import get_logger
from mailintake.sources.base import TokenProvider
from mailintake.sources.graph_subscriptions import Subscribed, SubscriptionGone
from mailintake.store import graph_subscriptions as stored
from mailintake.store import schedule
from mailintake.store.repo import MailboxRecord, Schedule, Store

log = get_logger(__name__)
NOTIFY_PATH = "/notifications/graph"
LIFECYCLE_PATH = "/notifications/graph/lifecycle"
RENEW_BEFORE = timedelta(hours=24)  # of a 4,230-minute subscription: renewed every ~2 days
CHECK_EVERY = 60.0  # seconds between rounds (a lifecycle notification starts one at once)
FIRST_RETRY = 10.0  # seconds after a failure, doubled at each one in a row
# The first round waits this long: Graph's validation of a new subscription calls back into
# this server, which starts listening only after the application has started.
START_DELAY = 1.0
MAX_RETRY = 3600.0
T = TypeVar("T")


class SubscriptionClient(Protocol):
    """What keeping a subscription needs of Graph (sources.graph_subscriptions)."""

    def create(
        self, notification_url: str, lifecycle_url: str, client_state: str, now: datetime
    ) -> Subscribed: ...

    def renew(self, subscription_id: str, now: datetime) -> datetime: ...

    def delete(self, subscription_id: str) -> None: ...

    def close(self) -> None: ...


ClientFactory = Callable[[MailboxSpec, TokenProvider, TokenProvider], SubscriptionClient]


def endpoints(public_url: str) -> tuple[str, str]:
    """The notification URL and the lifecycle notification URL under ``public_url``."""
    root = public_url.rstrip("/")
    return root + NOTIFY_PATH, root + LIFECYCLE_PATH


def _graph(spec: MailboxSpec) -> bool:
    return spec.protocol is not None and spec.protocol.value == "graph"


def push_on(spec: MailboxSpec) -> bool:
    """A Graph mailbox whose ``push`` is ``auto`` (the default)."""
    return _graph(spec) and spec.push != "off"


def _waits(record: MailboxRecord) -> bool:
    spec = record.spec
    oauth = spec.oauth
    schedule = Schedule(
        spec.name,
        spec.enabled is not False,
        record.auth_state,
        oauth is not None,
        str(oauth.grant_type) if oauth is not None and oauth.grant_type else None,
        spec.poll_interval,
    )
    return mailbox_waits_for_a_person(schedule)


def decide(
    record: MailboxRecord | None, row: stored.Subscription | None, now: datetime, url: str
) -> str | None:
    """What the mailbox's subscription needs: "create", "renew", "delete" or nothing."""
    if record is not None and push_on(record.spec) and record.spec.enabled is not False:
        if _waits(record):
            return None  # a person must act first; the subscription stays as it is
        folder = resolve.folder(record.spec) or "inbox"
        if row is None or row.subscription_id is None:
            return "create"
        if row.folder != folder or row.notification_url != url:
            return "create"
        if row.renew_now or row.expires_at is None or row.expires_at - now <= RENEW_BEFORE:
            return "renew"
        return None
    return "delete" if row is not None else None


@dataclass
class GraphPush:
    """Keeps the subscriptions (see the module); ``wake`` makes a mailbox due now."""

    store: Store
    public_url: str
    tokens: TokenManager
    wake: Callable[[str], object]
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    client_factory: ClientFactory = build_graph_subscriptions
    check_every: float = CHECK_EVERY
    start_delay: float = START_DELAY
    _retry: dict[str, tuple[int, datetime]] = field(default_factory=dict)
    _poke: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    @property
    def urls(self) -> tuple[str, str]:
        return endpoints(self.public_url)

    def round(self) -> dict[str, str]:
        """Look at every mailbox once; returns what was done, by mailbox."""
        now = self.clock()
        with self.store.read() as repo:
            records = {r.spec.name: r for r in repo.list_mailboxes()}
            rows = stored.listed(repo.conn)
        done: dict[str, str] = {}
        for name in sorted(records.keys() | rows.keys()):
            if decide(records.get(name), rows.get(name), now, self.urls[0]) is None:
                continue
            action = self.keep(name)
            if action is not None:
                done[name] = action
        return done

    def keep(self, name: str) -> str | None:
        """Do what the mailbox's subscription needs, as its one keeper; returns what was
        done ("created", "renewed", "deleted", "failed"), None when nothing was or another
        process holds it."""
        now = self.clock()
        failures, retry_at = self._retry.get(name, (0, now))
        if now < retry_at:
            return None
        with contextlib.ExitStack() as held:
            try:
                held.enter_context(self.store.exclusive(f"graph-push:{name}", wait=0.0))
            except TransientError:
                return None  # another process keeps it now
            try:
                action = self._keep(name, now)
            except MailintakeError as exc:
                pause = min(FIRST_RETRY * 2**failures, MAX_RETRY)
                self._retry[name] = (failures + 1, now + timedelta(seconds=pause))
                log.warning("push.subscription_failed", mailbox=name, error=str(exc))
                return "failed"
        self._retry.pop(name, None)
        if action is not None:
            log.info(f"push.subscription_{action}", mailbox=name)
        return action

    def _keep(self, name: str, now: datetime) -> str | None:
        with self.store.read() as repo:
            try:
                record: MailboxRecord | None = repo.get_mailbox(name, reveal=True)
            except NotFound:
                record = None
            row = stored.load(repo.conn, name)
        action = decide(record, row, now, self.urls[0])
        if action is None:
            return None
        if action == "delete" or record is None:
            assert row is not None
            old = row.subscription_id
            if old is not None and record is not None and _graph(record.spec):
                self._with_client(record.spec, lambda client: client.delete(old))
            with self.store.begin() as repo:
                stored.forget(repo.conn, name)
            return "deleted"
        found: MailboxRecord = record
        return self._with_client(found.spec, lambda c: self._create_or_renew(c, found, row, now))

    def _create_or_renew(
        self,
        client: SubscriptionClient,
        record: MailboxRecord,
        row: stored.Subscription | None,
        now: datetime,
    ) -> str:
        name = record.spec.name
        if decide(record, row, now, self.urls[0]) == "renew":
            assert row is not None
            assert row.subscription_id is not None
            try:
                expires = client.renew(row.subscription_id, now)
            except SubscriptionGone:
                log.info("push.subscription_gone", mailbox=name)
            else:
                with self.store.begin() as repo:
                    stored.renewed(repo.conn, name, expires)
                return "renewed"
        elif row is not None and row.subscription_id is not None:
            with contextlib.suppress(MailintakeError):  # its folder or URL changed
                client.delete(row.subscription_id)
        client_state = secrets.token_urlsafe(48)  # 64 characters; Graph allows 128
        made = client.create(*self.urls, client_state, now)
        folder = resolve.folder(record.spec) or "inbox"
        subscription = stored.Subscription(name, folder, made.id, self.urls[0], made.expires, False)
        with self.store.begin() as repo:
            stored.save(repo.conn, repo.box, subscription, client_state)
        self.wake(name)  # what arrived while there was no subscription
        return "created"

    def _with_client(self, spec: MailboxSpec, work: Callable[[SubscriptionClient], T]) -> T:
        token, renew = self.tokens.providers(spec.name)
        client = self.client_factory(spec, token, renew)
        try:
            return work(client)
        finally:
            client.close()

    # --- the loop -------------------------------------------------------------------------

    def poke(self) -> None:
        """Start a round now (Graph asked for a renewal, or removed a subscription)."""
        self._poke.set()

    def start(self) -> threading.Thread:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="graph-push", daemon=True)
        self._thread.start()
        return self._thread

    def stop(self) -> None:
        self._stop.set()
        self._poke.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        self._stop.wait(self.start_delay)
        while not self._stop.is_set():
            self._poke.clear()
            try:
                self.round()
            except Exception as exc:  # the database went away: the next round tries again
                log.error("push.round_failed", error=str(exc))
            self._poke.wait(self.check_every)


def waker(
    store: Store, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> Callable[[str], object]:
    """Makes a mailbox due now in the store, for a process without a scheduler of its own
    (``serve --no-scheduler``): the workers' next step claims it."""

    def wake(name: str) -> None:
        with store.begin() as repo:
            schedule.wake(repo.conn, name, clock())

    return wake


def unsubscribe(
    store: Store,
    tokens: TokenManager,
    name: str,
    client_factory: ClientFactory = build_graph_subscriptions,
) -> bool:
    """Delete the mailbox's subscription at Graph while its credentials are still there (the
    mailbox is about to be deleted); False when it had none or Graph could not be told (the
    subscription then ends at its expiry, its notifications ignored)."""
    with store.read() as repo:
        row = stored.load(repo.conn, name)
        if row is None or row.subscription_id is None:
            return False
        spec = repo.get_mailbox(name, reveal=True).spec
    token, renew = tokens.providers(name)
    client = client_factory(spec, token, renew)
    try:
        client.delete(row.subscription_id)
    except MailintakeError as exc:
        log.warning("push.unsubscribe_failed", mailbox=name, error=str(exc))
        return False
    finally:
        client.close()
    with store.begin() as repo:
        stored.forget(repo.conn, name)
    return True


def unsubscriber(store: Store) -> Callable[[list[str]], object]:
    """``unsubscribe`` for each of several mailboxes about to be deleted (``apply --prune``);
    a subscription of one that is kept after all is created again by its keeper."""
    tokens = TokenManager(store)
    return lambda names: [unsubscribe(store, tokens, name) for name in names]
