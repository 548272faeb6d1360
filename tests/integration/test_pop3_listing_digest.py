"""POP3 has no cursor: a mailbox that keeps its messages lists all of them every pass. Against
a real Dovecot: the pass leaves the digest of the listing's imported beginning, the next one
recognises it without reading the mailbox's keys from the store and screens only what came
after; a changed listing, a pass whose output failed and a mailbox deleted and added again
never hide a message that is not imported."""

from __future__ import annotations

import base64
import poplib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from mailintake.engine.batches import BULK
from mailintake.engine.listing_digest import digest
from mailintake.engine.poll import Poller
from mailintake.keys import pop3_key
from mailintake.store import import_views, imports, listing_digests
from mailintake.store.imports import ImportEntry
from mailintake.store.listing_digests import ListingDigest
from mailintake.store.repo import Store
from tests.support.dovecot import MailServer, xoauth2
from tests.support.mail import app_mailbox, configure, imported, raw

KEPT = BULK + 10  # enough to be screened in bulk


def session(server: MailServer, user: str) -> poplib.POP3:
    """A POP3 session of the user's own (another client than mailintake)."""
    client = poplib.POP3(server.dovecot.host, server.dovecot.pop3_port, timeout=30)
    client._shortcmd("AUTH XOAUTH2")  # type: ignore[attr-defined]
    client._shortcmd(base64.b64encode(xoauth2(user, server.token(user))).decode())  # type: ignore[attr-defined]
    return client


def uidls(server: MailServer, user: str) -> list[str]:
    """The mailbox's UIDLs, in the server's order."""
    client = session(server, user)
    lines: list[bytes] = client.uidl()[1]  # type: ignore[assignment]
    client.quit()
    return [line.decode().split()[1] for line in lines]


def delete_first(server: MailServer, user: str, count: int) -> None:
    """Someone else's client deletes the mailbox's first ``count`` messages."""
    client = session(server, user)
    for number in range(1, count + 1):
        client.dele(number)
    client.quit()


@pytest.fixture
def kept(store: Store, tmp_path: Path, mail_server: MailServer) -> Iterator[tuple[str, str]]:
    """A POP3 mailbox (keep) of KEPT messages: all but the last 5 imported by earlier passes
    (recorded and acknowledged in the store, as those passes leave them)."""
    user = mail_server.fresh_user("kept")
    mail_server.dovecot.add_delegate(mail_server.app_grant()["client_id"], user)
    mail_server.dovecot.deliver_many(user, (raw(n) for n in range(KEPT)))
    name = "kept"
    configure(store, mail_server, tmp_path / "out", pop3_box(mail_server, name, user))
    earlier = [ImportEntry(pop3_key(u), {"uidl": u}) for u in uidls(mail_server, user)[:-5]]
    with store.begin() as repo:
        imports.record(repo.conn, name, earlier)
        imports.acknowledged(repo.conn, name, [e.key for e in earlier])
    return name, user


def saved(store: Store, name: str) -> ListingDigest | None:
    with store.read() as repo:
        return listing_digests.load(repo.conn, name)


def keys_of(server: MailServer, user: str) -> list[str]:
    return [pop3_key(u) for u in uidls(server, user)]


class Statements:
    """The SQL the database runs (SQLite's own trace of every statement, with its values)."""

    def __init__(self, store: Store) -> None:
        self.seen: list[str] = []
        store.engine.dispose()  # new connections, each traced
        event.listen(store.engine, "connect", self._trace)

    def _trace(self, connection: Any, _record: Any) -> None:
        connection.set_trace_callback(self.seen.append)

    def reading_every_key(self) -> list[str]:
        return [s for s in self.seen if "FROM imports" in s and "'acknowledged'" in s]


def test_an_unchanged_listing_is_known_by_its_digest(
    store: Store, home: Path, tmp_path: Path, mail_server: MailServer, kept: tuple[str, str]
) -> None:
    name, user = kept
    keys = keys_of(mail_server, user)
    poller = Poller(store, home)
    first = poller.poll(name)
    assert (first.imported, first.skipped, first.error) == (5, KEPT - 5, None)
    assert len(imported(tmp_path / "out", name)) == 5
    # Saved while listing: the beginning that was imported then, not the 5 new ones.
    assert saved(store, name) == ListingDigest(KEPT - 5, digest(keys[:-5]))
    second = poller.poll(name)
    assert (second.imported, second.skipped, second.error) == (0, KEPT, None)
    assert saved(store, name) == ListingDigest(KEPT, digest(keys))
    # Now the whole listing is known by one hash: no statement reads the mailbox's keys.
    if store.engine.dialect.name == "sqlite":
        statements = Statements(store)
        third = poller.poll(name)
        assert (third.imported, third.skipped, third.error) == (0, KEPT, None)
        assert statements.seen  # traced indeed
        assert statements.reading_every_key() == []
    # New mail is listed last: only it is screened against the store, and imported.
    mail_server.dovecot.deliver_many(user, [raw(KEPT + 1), raw(KEPT + 2)])
    fourth = poller.poll(name)
    assert (fourth.imported, fourth.skipped, fourth.error) == (2, KEPT, None)
    assert len(imported(tmp_path / "out", name)) == 7


def test_a_changed_listing_is_screened_whole(
    store: Store, home: Path, tmp_path: Path, mail_server: MailServer, kept: tuple[str, str]
) -> None:
    name, user = kept
    poller = Poller(store, home)
    assert poller.poll(name).imported == 5
    assert poller.poll(name).skipped == KEPT
    # The first three go (another client): the saved beginning is not this listing's.
    delete_first(mail_server, user, 3)
    mail_server.dovecot.deliver_many(user, [raw(KEPT + 1)])
    result = poller.poll(name)
    assert (result.imported, result.skipped, result.error) == (1, KEPT - 3, None)
    keys = keys_of(mail_server, user)
    assert saved(store, name) == ListingDigest(len(keys) - 1, digest(keys[:-1]))
    assert poller.poll(name).skipped == len(keys)


def pop3_box(server: MailServer, name: str, user: str) -> dict[str, Any]:
    return app_mailbox(server, name, user, "pop3", after_import="keep")


@pytest.mark.slow  # imports the whole mailbox again at its end
def test_what_is_not_recorded_is_never_covered(
    store: Store, home: Path, tmp_path: Path, mail_server: MailServer, kept: tuple[str, str]
) -> None:
    name, user = kept
    keys = keys_of(mail_server, user)
    # The output cannot write: the five new messages fail, none is recorded.
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the output's folder should be")
    configure(store, mail_server, blocked, pop3_box(mail_server, name, user))
    failed = Poller(store, home).poll(name)
    assert (failed.imported, failed.failed, failed.skipped) == (0, 5, KEPT - 5)
    assert saved(store, name) == ListingDigest(KEPT - 5, digest(keys[:-5]))
    # The output works again and a person asks for them now: the digest covered none.
    configure(store, mail_server, tmp_path / "out", pop3_box(mail_server, name, user))
    with store.begin() as repo:
        assert all(import_views.retry_now(repo.conn, name, key) for key in keys[-5:])
    result = Poller(store, home).poll(name)
    assert (result.imported, result.skipped, result.error) == (5, KEPT - 5, None)
    assert len(imported(tmp_path / "out", name)) == 5
    assert Poller(store, home).poll(name).skipped == KEPT
    assert saved(store, name) == ListingDigest(KEPT, digest(keys))
    # Deleted and added again, the mailbox starts afresh: its digest went with it.
    with store.begin() as repo:
        repo.delete_mailbox(name)
    assert saved(store, name) is None
    configure(store, mail_server, tmp_path / "again", pop3_box(mail_server, name, user))
    again = Poller(store, home).poll(name)
    assert (again.imported, again.skipped, again.error) == (KEPT, 0, None)
