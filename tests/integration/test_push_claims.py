"""Push connections claimed in the store (SQLite and PostgreSQL): one worker per mailbox, a
dead worker's taken over, let go of one by one or all at once, disabled mailboxes never."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mailintake.services.apply import apply_document
from mailintake.store import push, workers
from mailintake.store.repo import Store
from tests.support.memory import mailbox, setup

pytestmark = pytest.mark.both_databases

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def names(found: list[push.Candidate]) -> list[tuple[str, bool]]:
    return [(c.name, c.mine) for c in found]


def test_one_worker_holds_a_mailboxs_push_connection(store: Store, tmp_path: Path) -> None:
    setup(store, tmp_path / "capture")
    off = {**mailbox("off"), "enabled": False}
    apply_document(store, {"mailboxes": [mailbox("zeta"), off]}, {})
    live = T0 - workers.DEAD_AFTER
    with store.begin() as repo:
        workers.beat(repo.conn, "a:1:x", "a", T0, T0, 4, 0)
        workers.beat(repo.conn, "b:2:y", "b", T0, T0, 4, 0)
        assert names(push.candidates(repo.conn, "a:1:x", live)) == [
            ("invoices", False),
            ("zeta", False),
        ]
        assert push.claim(repo.conn, "zeta", "a:1:x", live)
        assert push.claim(repo.conn, "zeta", "a:1:x", live)  # again: still its own
        assert not push.claim(repo.conn, "zeta", "b:2:y", live)  # a live worker holds it
        assert not push.claim(repo.conn, "off", "b:2:y", live)  # disabled
        assert push.claim(repo.conn, "invoices", "b:2:y", live)
    with store.read() as repo:
        assert names(push.candidates(repo.conn, "a:1:x", live)) == [("zeta", True)]
        assert push.held(repo.conn, "a:1:x") == {"zeta"}
        assert push.holders(repo.conn) == {"invoices": "b:2:y", "zeta": "a:1:x"}

    later = T0 + timedelta(seconds=30)  # worker a stopped beating: its claim is free
    with store.begin() as repo:
        workers.beat(repo.conn, "b:2:y", "b", T0, later, 4, 0)
        since = later - workers.DEAD_AFTER
        assert names(push.candidates(repo.conn, "b:2:y", since)) == [
            ("invoices", True),
            ("zeta", False),
        ]
        assert push.claim(repo.conn, "zeta", "b:2:y", since)
        push.release(repo.conn, "b:2:y", ["invoices"])
        push.release(repo.conn, "b:2:y", [])  # nothing
        push.release(repo.conn, "a:1:x")  # the dead worker's release changes nothing now
    with store.read() as repo:
        assert push.holders(repo.conn) == {"zeta": "b:2:y"}
    with store.begin() as repo:
        push.release(repo.conn, "b:2:y")
    with store.read() as repo:
        assert push.holders(repo.conn) == {}


def test_a_worker_claims_only_while_it_is_live(store: Store, tmp_path: Path) -> None:
    """A worker whose first heartbeat is not recorded yet would look dead to the others, who
    would take its claims while it kept the connections open: it claims nothing until then,
    nor once its heartbeat is older than the others allow."""
    setup(store, tmp_path / "capture")
    live = T0 - workers.DEAD_AFTER
    with store.begin() as repo:
        assert not push.claim(repo.conn, "invoices", "new:1:x", live)
        workers.beat(repo.conn, "new:1:x", "new", T0, T0, 4, 0)
        assert push.claim(repo.conn, "invoices", "new:1:x", live)
    later = T0 + workers.DEAD_AFTER + timedelta(seconds=1)
    with store.begin() as repo:
        push.release(repo.conn, "new:1:x")
        assert not push.claim(repo.conn, "invoices", "new:1:x", later - workers.DEAD_AFTER)
        assert push.holders(repo.conn) == {}
