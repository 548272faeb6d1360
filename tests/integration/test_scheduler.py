"""The scheduler on the store (SQLite and PostgreSQL): due times, back-off, people to wait
for, the longest-overdue first, a refused poll that is no failure, a slot that frees starting
the next poll at once, and claims that two workers never share."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from mailintake.config.models import MailboxSpec
from mailintake.engine.poll import Poller, PollResult
from mailintake.engine.scheduler import Scheduler
from mailintake.runtime import open_store
from mailintake.services.apply import apply_document
from mailintake.settings import Settings
from mailintake.sources.base import KnownKeys, SourceItem, TokenProvider
from mailintake.sources.memory import MemoryMailbox, MemorySource
from mailintake.store import leases, schedule, workers
from mailintake.store.repo import Store
from mailintake.store.tables import mailboxes
from tests.support.memory import dirs, mailbox, poller, setup
from tests.support.store import authorized, places

pytestmark = pytest.mark.both_databases


T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def test_the_scheduler_isolates_a_failing_mailbox_and_waits_for_people(
    store: Store, home: Path, tmp_path: Path, box: MemoryMailbox
) -> None:
    out = tmp_path / "capture"
    setup(store, out)
    apply_document(store, {"mailboxes": [mailbox(n) for n in ("broken", "waiting")]}, {})
    authorized(store, "invoices", "broken")
    with store.begin() as repo:
        repo.set_auth_state("waiting", "reauthorization_required", "authorize again")

    class Broken(MemorySource):
        def list_items(self, known: KnownKeys | None = None) -> list[SourceItem]:
            raise RuntimeError("a bug in one mailbox")

    def source(
        spec: MailboxSpec,
        _token: TokenProvider,
        _renew: TokenProvider | None = None,
        **_options: Any,
    ) -> MemorySource:
        return Broken(box) if spec.name == "broken" else MemorySource(box)

    scheduler = Scheduler(
        Poller(store, home, source_factory=source), concurrency=3, clock=lambda: T0, jitter=0.0
    )
    with ThreadPoolExecutor(max_workers=3) as pool:
        scheduler.step(pool)
    found = places(store)
    assert len(dirs(out)) == 3  # the healthy mailbox imported despite the broken one
    assert found["broken"].failures == 1
    assert found["broken"].next_poll_at == T0 + timedelta(seconds=120)  # twice the interval
    assert (found["invoices"].failures, found["invoices"].next_poll_at) == (
        0,
        T0 + timedelta(seconds=60),
    )
    assert all(due.polled_by is None for due in found.values())
    with store.read() as repo:
        never = {r.spec.name for r in repo.list_mailboxes() if r.last_poll_at is None}
    assert never == {"waiting"}  # it needs a person: looked at again later, not polled

    with store.begin() as repo:  # the person signed in again: due at once
        repo.set_auth_state("waiting", "authorized", None)
    assert places(store)["waiting"].next_poll_at is None


def test_the_scheduler_polls_the_longest_waiting_mailbox_first(
    store: Store, home: Path, tmp_path: Path, box: MemoryMailbox
) -> None:
    """With more mailboxes due than may be polled at once, the one that has waited longest
    goes first: a mailbox early in the alphabet never keeps a later one waiting for ever."""
    setup(store, tmp_path / "capture")
    apply_document(store, {"mailboxes": [mailbox("zeta")]}, {})
    authorized(store, "invoices", "zeta")
    polled: list[str] = []
    inner = poller(store, home, box)

    class Recording:
        store = inner.store

        def poll(self, name: str, *, owner: str | None = None) -> PollResult:
            polled.append(name)
            return inner.poll(name, owner=owner)

    clock = [T0]
    scheduler = Scheduler(Recording(), concurrency=1, clock=lambda: clock[0], jitter=0.0)
    for _ in range(3):
        with ThreadPoolExecutor(max_workers=1) as pool:
            scheduler.step(pool)
        clock[0] += timedelta(seconds=60)  # the interval: the mailbox just polled is due again
    assert polled == ["invoices", "zeta", "invoices"]


def test_a_poll_refused_for_another_polls_lease_is_no_failure(
    store: Store, home: Path, tmp_path: Path, box: MemoryMailbox
) -> None:
    """Another poll holds the mailbox: it is not due for this worker until that lease ends,
    and its failures in a row (back-off) stay as they were."""
    setup(store, tmp_path / "capture")
    authorized(store, "invoices")
    with store.begin() as repo:
        assert leases.acquire(repo.conn, "invoices", "elsewhere:1:abc", timedelta(seconds=20))
        ends = schedule.lease_ends(repo.conn, "invoices")
    assert ends is not None
    scheduler = Scheduler(poller(store, home, box), concurrency=1, clock=lambda: T0, jitter=0.0)
    with ThreadPoolExecutor(max_workers=1) as pool:
        scheduler.step(pool)
    found = places(store)["invoices"]
    assert found.failures == 0
    assert found.next_poll_at == max(ends, T0) + timedelta(seconds=1)
    assert dirs(tmp_path / "capture") == []


class HeldPoller:
    """A poller whose polls end when the test says so."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.started: list[str] = []
        self.release = {name: threading.Event() for name in ("invoices", "zeta")}
        self.changed = threading.Condition()

    def poll(self, name: str, *, owner: str | None = None) -> PollResult:
        with self.changed:
            self.started.append(name)
            self.changed.notify_all()
        self.release[name].wait(30)
        return PollResult(name)

    def wait_for(self, count: int) -> list[str]:
        with self.changed:
            self.changed.wait_for(lambda: len(self.started) >= count, timeout=30)
            return list(self.started)


def test_a_slot_that_frees_starts_the_next_due_poll_at_once(store: Store, tmp_path: Path) -> None:
    """One slot, two mailboxes due: when the first poll ends, the second starts although
    the clock stands still and the loop would otherwise sleep for an hour."""
    setup(store, tmp_path / "capture")
    apply_document(store, {"mailboxes": [mailbox("zeta")]}, {})
    authorized(store, "invoices", "zeta")
    held = HeldPoller(store)
    scheduler = Scheduler(
        held, concurrency=1, clock=lambda: T0, max_sleep=3600.0, heartbeat_every=3600.0
    )
    loop = scheduler.start()
    try:
        assert held.wait_for(1) == ["invoices"]
        held.release["invoices"].set()
        assert held.wait_for(2) == ["invoices", "zeta"]
    finally:
        held.release["zeta"].set()
        scheduler.stop()
        loop.join(30)
    assert not loop.is_alive()
    with store.read() as repo:
        assert workers.listed(repo.conn) == []  # it stopped in order: no longer listed


def test_two_workers_claim_each_mailbox_once(postgres_url: str, home: Path) -> None:
    """Two claims at once on PostgreSQL: the second skips the rows the first is claiming,
    and neither takes a mailbox the other has."""
    store = open_store(Settings(home=home, database_url=postgres_url))
    try:
        names = [f"m{n:02d}" for n in range(10)]
        apply_document(
            store,
            {
                "outputs": [{"name": "capture", "type": "folder", "path": str(home / "o")}],
                "mailboxes": [mailbox(n) for n in names],
            },
            {},
        )
        authorized(store, *names)
        live = T0 - workers.DEAD_AFTER

        def claim(repo: Any, worker: str, limit: int) -> list[str]:
            found = schedule.claim(
                repo.conn, worker, limit, T0, live, lambda _m: 60.0, lambda _m: False
            )
            return [c.schedule.name for c in found]

        with store.begin() as first:
            for worker in ("a:1:x", "b:2:y"):
                workers.beat(first.conn, worker, worker[0], T0, T0, 4, 0)
        with store.begin() as first:
            mine = claim(first, "a:1:x", 4)  # rows locked until this transaction ends
            with store.begin() as second:
                theirs = claim(second, "b:2:y", 10)
        assert mine == names[:4]
        assert theirs == names[4:]
        with store.begin() as again:
            assert claim(again, "b:2:y", 10) == []  # all due one interval from now

        with store.begin() as repo:  # worker a stops beating: its mailboxes are due again
            workers.beat(repo.conn, "b:2:y", "b", T0, T0 + timedelta(seconds=30), 4, 0)
        with store.begin() as repo:
            taken = schedule.claim(
                repo.conn,
                "b:2:y",
                10,
                T0 + timedelta(seconds=30),
                T0 + timedelta(seconds=30) - workers.DEAD_AFTER,
                lambda _m: 60.0,
                lambda _m: False,
            )
        assert sorted(c.schedule.name for c in taken) == mine
    finally:
        store.engine.dispose()


def test_a_dead_workers_mailboxes_come_before_those_overdue(postgres_url: str, home: Path) -> None:
    """A busy survivor takes a dead worker's polls first: their due time was moved one
    interval on when claimed, yet they must not wait behind every overdue mailbox."""
    store = open_store(Settings(home=home, database_url=postgres_url))
    try:
        names = [f"m{n:02d}" for n in range(8)]
        apply_document(
            store,
            {
                "outputs": [{"name": "capture", "type": "folder", "path": str(home / "o")}],
                "mailboxes": [mailbox(n) for n in names],
            },
            {},
        )
        authorized(store, *names)
        later = T0 + timedelta(seconds=90)
        with store.begin() as repo:
            workers.beat(repo.conn, "a:1:x", "a", T0, T0, 4, 4)
            workers.beat(repo.conn, "b:2:y", "b", T0, later, 4, 0)
            dead = [
                c.schedule.name
                for c in schedule.claim(
                    repo.conn, "a:1:x", 4, T0, T0, lambda _m: 60.0, lambda _m: False
                )
            ]
            repo.conn.execute(  # overdue for longer than the dead worker's claims
                update(mailboxes)
                .where(mailboxes.c.name.in_(names[4:]))
                .values(next_poll_at=T0 - timedelta(seconds=100), polled_by=None)
            )
        with store.begin() as repo:
            taken = schedule.claim(
                repo.conn,
                "b:2:y",
                4,
                later,
                later - workers.DEAD_AFTER,
                lambda _m: 60.0,
                lambda _m: False,
            )
        assert dead == names[:4]
        assert sorted(c.schedule.name for c in taken) == dead
    finally:
        store.engine.dispose()


def test_status_says_why_intervals_are_not_kept(store: Store, tmp_path: Path) -> None:
    from mailintake.status import scheduling_status

    setup(store, tmp_path / "capture")
    apply_document(store, {"mailboxes": [mailbox("zeta")]}, {})
    authorized(store, "invoices", "zeta")
    with store.begin() as repo:  # both polled once, due again at T0
        for name in ("invoices", "zeta"):
            schedule.claim(repo.conn, "w", 2, T0, T0, lambda _m: 0.0, lambda _m: False)
            schedule.finish(repo.conn, name, "w", T0, 0)
    later = T0 + timedelta(seconds=90)  # 30 s more than one interval (60 s) late
    with store.read() as repo:
        nobody = scheduling_status(repo, later)
    assert nobody["workers"] == []
    assert nobody["overdue"] == ["invoices", "zeta"]
    assert str(nobody["problem"]).startswith("no worker running")

    with store.begin() as repo:
        workers.beat(repo.conn, "host:1:abc", "host", T0, later, 2, 2)
    with store.read() as repo:
        full = scheduling_status(repo, later)
    assert [(w["id"], w["alive"], w["running"]) for w in full["workers"]] == [
        ("host:1:abc", True, 2)
    ]
    assert full["problem"] == (
        "2 mailbox(es) overdue by more than one interval: all 2 slots busy "
        "(add workers or raise --concurrency)"
    )
    with store.read() as repo:
        gone = scheduling_status(repo, later + timedelta(seconds=60))
    assert gone["workers"][0]["alive"] is False
    assert str(gone["problem"]).startswith("no worker running")
    with store.read() as repo:
        kept = scheduling_status(repo, T0 + timedelta(seconds=30))
    assert (kept["overdue"], kept["workers"][0]["alive"]) == ([], True)
    assert kept["problem"] is None


def test_the_heartbeat_records_the_worker_and_sets_the_metrics(
    store: Store, tmp_path: Path
) -> None:
    from mailintake.observability.metrics import REGISTRY

    setup(store, tmp_path / "capture")
    apply_document(store, {"mailboxes": [mailbox("zeta")]}, {})
    with store.begin() as repo:
        schedule.claim(repo.conn, "w", 2, T0, T0, lambda _m: 0.0, lambda _m: False)
        schedule.finish(repo.conn, "invoices", "w", T0 - timedelta(seconds=42), 0)
        schedule.finish(repo.conn, "zeta", "w", T0 + timedelta(seconds=30), 0)
    scheduler = Scheduler(HeldPoller(store), concurrency=7, clock=lambda: T0, host="here")
    scheduler.beat()
    with store.read() as repo:
        (worker,) = workers.listed(repo.conn)
    assert (worker.id, worker.host, worker.concurrency, worker.running) == (
        scheduler.id,
        "here",
        7,
        0,
    )
    assert worker.id.startswith("here:")
    assert worker.heartbeat_at == T0

    def sample(name: str, **labels: str) -> float | None:
        return REGISTRY.get_sample_value(name, labels)

    assert sample("mailintake_poll_concurrency") == 7
    assert sample("mailintake_polls_running") == 0
    assert sample("mailintake_mailbox_lag_seconds", mailbox="invoices") == 42
    assert sample("mailintake_mailbox_lag_seconds", mailbox="zeta") == 0


def test_a_new_workers_first_beats_from_several_threads_make_one_row(
    store: Store, tmp_path: Path
) -> None:
    """The loop's first beat and push's (engine/push.py start_push) may come at once: each
    would find no row and insert one."""
    setup(store, tmp_path / "capture")
    scheduler = Scheduler(HeldPoller(store), clock=lambda: T0, host="here")
    start = threading.Barrier(6)

    def beat() -> None:
        start.wait()
        scheduler.beat()

    with ThreadPoolExecutor(6) as pool:
        for done in [pool.submit(beat) for _ in range(6)]:
            done.result()
    with store.read() as repo:
        assert [w.id for w in workers.listed(repo.conn)] == [scheduler.id]


def test_a_wake_makes_a_mailbox_due_at_once_and_keeps_the_overdue_in_place(
    store: Store, tmp_path: Path
) -> None:
    setup(store, tmp_path / "capture")
    apply_document(
        store, {"mailboxes": [mailbox("zeta"), {**mailbox("off"), "enabled": False}]}, {}
    )
    with store.begin() as repo:
        schedule.claim(repo.conn, "w", 2, T0, T0, lambda _m: 0.0, lambda _m: False)
        schedule.finish(repo.conn, "invoices", "w", T0 + timedelta(seconds=60), 0)
        schedule.finish(repo.conn, "zeta", "w", T0 - timedelta(seconds=30), 0)
    woken = T0 + timedelta(seconds=5)
    with store.begin() as repo:
        assert schedule.wake(repo.conn, "invoices", woken)
        assert schedule.wake(repo.conn, "zeta", woken)
        assert not schedule.wake(repo.conn, "off", woken)  # disabled: never polled
        assert not schedule.wake(repo.conn, "nobody", woken)
    found = places(store)
    assert found["invoices"].next_poll_at == woken
    assert found["zeta"].next_poll_at == T0 - timedelta(seconds=30)  # overdue: keeps its place
    with store.begin() as repo:
        claimed = schedule.claim(repo.conn, "w", 5, woken, woken, lambda _m: 60.0, lambda _m: False)
    assert [c.schedule.name for c in claimed] == ["zeta", "invoices"]


def test_a_wake_during_a_poll_makes_it_due_again_when_that_poll_ends(
    store: Store, tmp_path: Path
) -> None:
    """The poll may have listed the folder before the new message came: its end must not
    push the next poll one interval away."""
    setup(store, tmp_path / "capture")
    with store.begin() as repo:
        claimed = schedule.claim(repo.conn, "w", 1, T0, T0, lambda _m: 60.0, lambda _m: False)
    assert [c.schedule.name for c in claimed] == ["invoices"]
    woken = T0 + timedelta(seconds=2)
    with store.begin() as repo:
        assert schedule.wake(repo.conn, "invoices", woken)
        assert schedule.wake(repo.conn, "invoices", woken + timedelta(seconds=1))
    during = places(store)["invoices"]
    assert (during.polled_by, during.next_poll_at) == ("w", T0 + timedelta(seconds=60))
    with store.begin() as repo:
        schedule.finish(repo.conn, "invoices", "w", T0 + timedelta(seconds=63), 0)
    assert places(store)["invoices"].next_poll_at == woken  # the first wake's time

    with store.begin() as repo:  # the next poll took the wake: its end keeps the interval
        schedule.claim(repo.conn, "w", 1, woken, woken, lambda _m: 60.0, lambda _m: False)
        schedule.finish(repo.conn, "invoices", "w", woken + timedelta(seconds=60), 0)
    assert places(store)["invoices"].next_poll_at == woken + timedelta(seconds=60)

    later = T0 + timedelta(days=1)  # no worker beats: every poll is one to take over
    with store.begin() as repo:  # a wake for a poll taken over: the new poll covers it
        schedule.claim(repo.conn, "w", 1, later, later, lambda _m: 60.0, lambda _m: False)
        schedule.wake(repo.conn, "invoices", later)
        schedule.claim(repo.conn, "v", 1, later, later, lambda _m: 60.0, lambda _m: False)
        schedule.finish(repo.conn, "invoices", "w", later, 0)  # the old poll: nothing changes
        schedule.finish(repo.conn, "invoices", "v", later + timedelta(seconds=60), 0)
    assert places(store)["invoices"].next_poll_at == later + timedelta(seconds=60)


class GatedPoller:
    """A poller whose polls each wait until the test lets one end."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.started: list[str] = []
        self.gate = threading.Semaphore(0)
        self.changed = threading.Condition()

    def poll(self, name: str, *, owner: str | None = None) -> PollResult:
        with self.changed:
            self.started.append(name)
            self.changed.notify_all()
        self.gate.acquire(timeout=30)
        return PollResult(name)

    def wait_for(self, count: int, seconds: float = 30) -> int:
        with self.changed:
            self.changed.wait_for(lambda: len(self.started) >= count, timeout=seconds)
            return len(self.started)


def test_the_scheduler_polls_a_woken_mailbox_at_once(store: Store, tmp_path: Path) -> None:
    """The clock stands still and the loop would sleep for an hour: a wake during a poll
    starts another when it ends, and a wake between polls starts one at once."""
    setup(store, tmp_path / "capture")
    authorized(store, "invoices")
    gated = GatedPoller(store)
    scheduler = Scheduler(
        gated, concurrency=2, clock=lambda: T0, max_sleep=3600.0, heartbeat_every=3600.0
    )
    loop = scheduler.start()
    try:
        assert gated.wait_for(1) == 1
        assert scheduler.wake("invoices")
        gated.gate.release()
        assert gated.wait_for(2) == 2
        gated.gate.release()
        assert gated.wait_for(3, seconds=0.5) == 2  # no wake: due one interval later
        assert scheduler.wake("invoices")
        assert gated.wait_for(3) == 3
        assert not scheduler.wake("nobody")
    finally:
        for _ in range(3):
            gated.gate.release()
        scheduler.stop()
        loop.join(30)
    assert not loop.is_alive()
