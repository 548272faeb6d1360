"""An IMAP poll goes on from the folder's checkpoint on a real Dovecot: with nothing new it
sends no SEARCH (one round trip after sign-in and SELECT), new mail after the checkpoint is
imported, a failed message is tried again from the list of failures (its UID asked for in
the one SEARCH, never a listing of the whole folder), and a folder recreated on the server
(a new UIDVALIDITY) is screened by Message-ID and size: nothing imported twice, and the
mailbox's status says so."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from mailintake.engine.factories import build_source
from mailintake.engine.poll import Poller
from mailintake.sources.base import MailSource, TokenProvider
from mailintake.status import mailbox_status
from mailintake.store import checkpoints
from mailintake.store.repo import Store
from sandbox.dovecot import Dovecot
from tests.support.cli import run_cli
from tests.support.clock import Clock
from tests.support.dovecot import MailServer
from tests.support.mail import (
    cure,
    dovecot_mailbox,
    imported,
    message_file,
    poison,
    raw,
)

pytestmark = pytest.mark.both_databases


class Commands:
    """A source factory that builds the real IMAP source and records every command it sends
    once the folder is selected (what a poll costs on the wire)."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def __call__(
        self, spec: Any, token: TokenProvider, renew: TokenProvider | None = None, **options: Any
    ) -> MailSource:
        source = build_source(spec, token, renew, **options)
        opening = source.open
        sent = self.sent

        def open_and_record() -> None:
            opening()
            imap = source.client._imap  # type: ignore[attr-defined]
            send = imap.send

            def recorded(data: bytes) -> None:
                words = data.decode(errors="replace").split()
                sent.append(" ".join(words[1:]))  # without its tag
                send(data)

            imap.send = recorded

        source.open = open_and_record  # type: ignore[method-assign]
        return source

    def take(self) -> list[str]:
        taken, self.sent[:] = list(self.sent), []
        return taken


def searches(commands: list[str]) -> list[str]:
    return [c for c in commands if c.upper().startswith("UID SEARCH")]


def box(store: Store, server: MailServer, out: Path, user: str, action: str = "mark_read") -> None:
    dovecot_mailbox(store, server, out, "box", user, after_import=action)


class Watched(NamedTuple):
    """A mailbox "box" on Dovecot and a Poller whose IMAP commands are recorded."""

    user: str
    messages: list[bytes]
    out: Path
    commands: Commands
    poller: Poller


def watched(
    store: Store,
    home: Path,
    tmp_path: Path,
    server: MailServer,
    count: int,
    action: str = "mark_read",
    **options: Any,
) -> Watched:
    """``count`` new messages in a mailbox of a user of its own, imported by "box"."""
    user = server.fresh_user("cp")
    messages = [raw(n) for n in range(count)]
    server.dovecot.deliver_many(user, messages)
    out = tmp_path / "out"
    box(store, server, out, user, action)
    commands = Commands()
    poller = Poller(store, home, source_factory=commands, **options)
    return Watched(user, messages, out, commands, poller)


def saved(store: Store) -> checkpoints.Checkpoint | None:
    with store.read() as repo:
        return checkpoints.load(repo.conn, "box", "INBOX")


def status(store: Store) -> dict[str, Any]:
    with store.read() as repo:
        return next(row for row in mailbox_status(repo) if row["name"] == "box")


def test_a_poll_with_nothing_new_sends_no_search(
    store: Store, home: Path, tmp_path: Path, mail_server: MailServer
) -> None:
    dovecot = mail_server.dovecot
    user, first, out, commands, poller = watched(store, home, tmp_path, mail_server, 5)

    result = poller.poll("box")
    assert (result.imported, result.error) == (5, None)
    assert searches(commands.take()) == ["UID SEARCH ALL"]  # no checkpoint yet
    checkpoint = saved(store)
    assert checkpoint is not None
    assert checkpoint.uidvalidity == dovecot.mailbox_status(user)["uidvalidity"]
    assert checkpoint.last_uid == 5

    again = poller.poll("box")
    assert (again.imported, again.skipped, again.error) == (0, 0, None)
    assert commands.take() == ["LOGOUT"]  # nothing after SELECT but signing out

    later = [raw(10 + n) for n in range(3)]
    dovecot.deliver_many(user, later)
    third = poller.poll("box")
    assert (third.imported, third.error) == (3, None)
    assert searches(commands.take()) == ["UID SEARCH UID 6:*"]
    assert imported(out, "box") == set(first + later)
    assert saved(store) == checkpoints.Checkpoint("INBOX", checkpoint.uidvalidity, 8)

    # A message came and went before the poll: UIDNEXT moved, nothing is new. ``n:*``
    # answers the highest UID even when it is below n (RFC 3501 §6.4.8): not imported again.
    came_and_went = raw(99)
    dovecot.deliver(user, came_and_went)
    assert dovecot.mailbox_status(user)["uidnext"] == 10  # Dovecot gave it UID 9
    message_file(dovecot, user, came_and_went).unlink()
    fourth = poller.poll("box")
    assert (fourth.imported, fourth.skipped, fourth.error) == (0, 0, None)
    assert searches(commands.take()) == ["UID SEARCH UID 9:*"]
    assert saved(store) == checkpoints.Checkpoint("INBOX", checkpoint.uidvalidity, 9)
    assert poller.poll("box").imported == 0
    assert commands.take() == ["LOGOUT"]
    assert imported(out, "box") == set(first + later)


def test_a_failed_message_is_tried_again_without_listing_the_folder(
    store: Store, home: Path, tmp_path: Path, mail_server: MailServer
) -> None:
    dovecot, clock = mail_server.dovecot, Clock()
    user, messages, out, commands, poller = watched(
        store, home, tmp_path, mail_server, 6, clock=clock
    )
    poison(dovecot, user, messages[2])  # UID 3

    result = poller.poll("box")
    assert (result.imported, result.failed) == (5, 1)
    commands.take()
    checkpoint = saved(store)
    assert checkpoint is not None
    assert checkpoint.last_uid == 6  # past the failed one: it is in the list of failures

    clock.advance(seconds=30)  # its next try is not due: nothing to ask the server
    waiting = poller.poll("box")
    assert (waiting.imported, waiting.failed, waiting.waiting) == (0, 0, 1)
    assert searches(commands.take()) == []

    clock.advance(seconds=31)
    cure(dovecot, user, messages[2])
    retried = poller.poll("box")
    assert (retried.imported, retried.failed, retried.waiting) == (1, 0, 0)
    assert searches(commands.take()) == ["UID SEARCH UID 3,7:*"]
    assert imported(out, "box") == set(messages)
    assert status(store)["failed"] == 0


def recreate_inbox(dovecot: Dovecot, user: str, messages: list[bytes], uidvalidity: int) -> None:
    """Delete ``user``'s INBOX (its messages, index and UID list) and make it again with
    ``messages``, as a restore from a backup does: a new UIDVALIDITY, new UIDs."""
    folder = dovecot.maildir(user)
    for sub in ("new", "cur", "tmp"):
        for path in (folder / sub).iterdir():
            path.unlink()
    for path in folder.iterdir():
        if path.is_file() and path.name.startswith("dovecot"):
            path.unlink()
    uidlist = folder / "dovecot-uidlist"
    uidlist.write_text(f"3 V{uidvalidity} N1\n")
    os.chown(uidlist, dovecot.uid, dovecot.gid)
    dovecot.deliver_many(user, messages)


def test_a_recreated_folder_imports_nothing_twice_and_says_so(
    store: Store, home: Path, tmp_path: Path, mail_server: MailServer
) -> None:
    dovecot = mail_server.dovecot
    user, messages, out, commands, poller = watched(
        store, home, tmp_path, mail_server, 6, action="keep"
    )
    assert poller.poll("box").imported == 6
    before = dovecot.mailbox_status(user)["uidvalidity"]

    arrived = raw(50)  # new mail in the recreated folder, among the old messages
    recreate_inbox(dovecot, user, [*messages[:3], arrived, *messages[3:]], before + 7)
    assert dovecot.mailbox_status(user)["uidvalidity"] == before + 7

    result = poller.poll("box")
    assert (result.imported, result.skipped, result.failed, result.error) == (1, 6, 0, None)
    assert imported(out, "box") == {*messages, arrived}
    assert len(list(out.glob("box/*/*/message.eml"))) == 7
    said = (
        f"INBOX was recreated on the server (UIDVALIDITY {before} → {before + 7}): 6 messages "
        "matched earlier imports by Message-ID and size and were skipped"
    )
    assert result.warnings == [said]
    assert status(store)["last_warning"] == said
    shown = run_cli(["status"], env={**os.environ, "COLUMNS": "200"})
    assert shown.returncode == 0, shown.stderr
    assert f"box: the last poll says: {said}" in " ".join(shown.stdout.split())
    assert saved(store) == checkpoints.Checkpoint("INBOX", before + 7, 7)

    commands.take()
    again = poller.poll("box")
    assert (again.imported, again.skipped, again.error) == (0, 0, None)
    assert commands.take() == ["LOGOUT"]
    assert status(store)["last_warning"] is None
