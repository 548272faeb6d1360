"""The POP3 source's pipelined RETR and DELE, against a real Dovecot: messages byte for byte
(dot-stuffed lines restored), the same with and without PIPELINING, an error in the middle
of a pipeline and a reader that stops early leave the session in step, the deletions of an
import in several batches, and deletions that no QUIT made final."""

from __future__ import annotations

import poplib
import socket
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from mailintake.config.models import MailboxSpec
from mailintake.engine.factories import build_source
from mailintake.engine.poll import Poller
from mailintake.sources.base import KnownKeys, MailSource, SourceItem, TokenProvider
from mailintake.sources.pop3 import Pop3Source
from mailintake.sources.pop3_wire import WINDOW, Pipe, pipelining
from mailintake.status import mailbox_status
from mailintake.store import imports
from mailintake.store.repo import Store
from tests.support.dovecot import MailServer, opened
from tests.support.mail import dovecot_mailbox, imported, pop3_source, raw

DOTTED = [
    b"Subject: dots\r\n\r\n.\r\n..\r\n...\r\n.leading\r\nmid . dot\r\n\r\n.\r\n",
    b"Subject: ends with a dot line\r\n\r\ntext\r\n.\r\n",
    b"Subject: empty body\r\n\r\n",
    b"Subject: crlf dot crlf inside\r\n\r\na\r\n.\r\nb\r\n",
    b"Subject: big\r\n\r\n" + b".0123456789abcdef\r\n" * 300_000,
    b"Subject: 8bit \xe9\r\n\r\n\x01\x7f\xff\r\n",
]


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "implicit-tls"])
def test_messages_come_byte_for_byte_with_dots_restored(
    mail_server: MailServer, tls: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(mail_server.dovecot.ca_file))  # trust the server
    user = mail_server.fresh_user("pipe")
    mail_server.dovecot.deliver_many(user, DOTTED)
    source = pop3_source(mail_server, user, tls=tls)
    with opened(source):
        items = source.list_items()
        fetched = list(source.fetch(items))
    assert [body for _item, body in fetched] == DOTTED
    assert [item.size for item in items] == [len(m) for m in DOTTED]


@pytest.mark.parametrize("pipelined", [True, False], ids=["pipelined", "one-by-one"])
def test_the_same_with_and_without_pipelining(mail_server: MailServer, pipelined: bool) -> None:
    user = mail_server.fresh_user("pipe")
    messages = [raw(n) for n in range(WINDOW * 3 + 5)]
    mail_server.dovecot.deliver_many(user, messages)
    source = pop3_source(mail_server, user)
    with opened(source):
        assert source.client is not None
        assert pipelining(source.client)  # Dovecot advertises it
        pipe = Pipe(source.client, pipelining=pipelined)
        numbers = list(range(1, len(messages) + 1))
        assert list(pipe.retrieve(numbers)) == list(zip(numbers, messages, strict=True))


def test_an_error_inside_a_pipeline_leaves_the_session_in_step(
    mail_server: MailServer,
) -> None:
    user = mail_server.fresh_user("pipe")
    messages = [raw(n) for n in range(6)]
    mail_server.dovecot.deliver_many(user, messages)
    source = pop3_source(mail_server, user)
    with opened(source):
        assert source.client is not None
        pipe = Pipe(source.client, pipelining=True)
        got: list[bytes] = []
        with pytest.raises(poplib.error_proto, match="ERR"):
            got.extend(m for _n, m in pipe.retrieve([1, 2, 99, 3, 4]))
        assert got == messages[:2]
        assert list(pipe.retrieve([5])) == [(5, messages[4])]
        # A reader that stops early: what is still due is read when it is closed.
        answers = pipe.retrieve([1, 2, 3, 4, 5, 6])
        assert next(answers) == (1, messages[0])
        answers.close()
        assert list(pipe.retrieve([6])) == [(6, messages[5])]
        assert source.client.stat()[0] == 6


def test_deletions_are_pipelined_and_committed_at_the_end(mail_server: MailServer) -> None:
    user = mail_server.fresh_user("pipe")
    messages = [raw(n) for n in range(150)]
    mail_server.dovecot.deliver_many(user, messages)
    source = pop3_source(mail_server, user, after_import="delete", batch=40)
    with opened(source):
        items = source.list_items()
        fetched = []
        for item, body in source.fetch(items):  # read in chunks of 40
            fetched.append(body)
            if len(fetched) <= 100:  # the session is free between the messages handed on
                source.acknowledge([item.source])
    assert fetched == messages
    assert mail_server.dovecot.messages(user) == messages[100:]


def test_an_import_of_several_batches_deletes_each_once(
    store: Store, tmp_path: Path, mail_server: MailServer
) -> None:
    server, dovecot = mail_server, mail_server.dovecot
    user = server.fresh_user("pipe")
    messages = [raw(n) for n in range(430)]
    dovecot.deliver_many(user, messages)
    name, out = "pop3-batches", tmp_path / "out"
    dovecot_mailbox(store, server, out, name, user, "pop3", after_import="delete")
    result = Poller(store, tmp_path / "home").poll(name)
    assert (result.imported, result.failed, result.error) == (len(messages), 0, None)
    assert imported(out, name) == set(messages)
    assert dovecot.messages(user) == []


class QuitNeverHappens:
    """A POP3 source whose connection drops before its QUIT: the server keeps every message
    that DELE marked (RFC 1939 §6: deletions happen in the UPDATE state, after QUIT)."""

    def __init__(self, inner: MailSource) -> None:
        assert isinstance(inner, Pop3Source)
        self.inner = inner
        self.protocol = inner.protocol
        self.prefetch_safe = inner.prefetch_safe
        self.acknowledged_at_commit = inner.acknowledged_at_commit

    def open(self) -> None:
        self.inner.open()

    def list_items(self, known: KnownKeys | None = None) -> list[SourceItem]:
        return self.inner.list_items(known)

    def list_pages(self, known: KnownKeys | None = None) -> Iterator[list[SourceItem]]:
        return self.inner.list_pages(known)

    def fetch(self, items: Sequence[SourceItem]) -> Iterator[tuple[SourceItem, bytes]]:
        return self.inner.fetch(items)

    def acknowledge(self, sources: Sequence[dict[str, Any]]) -> None:
        self.inner.acknowledge(sources)

    def _drop(self) -> None:
        if self.inner.client is not None:
            self.inner.client.sock.shutdown(socket.SHUT_RDWR)

    def commit(self) -> None:
        self._drop()
        self.inner.commit()

    def close(self) -> None:
        self._drop()
        self.inner.close()


def delete_after_import(
    store: Store, tmp_path: Path, server: MailServer, count: int
) -> tuple[str, str, Path, list[bytes]]:
    user = server.fresh_user("quit")
    messages = [raw(n) for n in range(count)]
    server.dovecot.deliver_many(user, messages)
    name, out = "pop3-quit", tmp_path / "out"
    dovecot_mailbox(store, server, out, name, user, "pop3", after_import="delete")
    return name, user, out, messages


def quit_lost(spec: MailboxSpec, token: TokenProvider, *args: Any, **options: Any) -> MailSource:
    return QuitNeverHappens(build_source(spec, token, *args, **options))


def test_deletions_that_quit_did_not_make_final_are_done_by_the_next_pass(
    store: Store, tmp_path: Path, mail_server: MailServer
) -> None:
    """DELE sent, QUIT never: the messages stay on the server and are not marked
    acknowledged; the next pass deletes them and imports none of them again."""
    name, user, out, messages = delete_after_import(store, tmp_path, mail_server, 150)
    home = tmp_path / "home"
    Poller(store, home, source_factory=quit_lost).poll(name)
    assert mail_server.dovecot.messages(user) == messages  # no QUIT: nothing deleted
    assert imported(out, name) == set(messages)
    with store.read() as repo:
        assert len(imports.pending_acknowledgements(repo.conn, name)) == len(messages)

    again = Poller(store, home).poll(name)  # deleted before listing: not even skipped
    assert (again.imported, again.skipped, again.error) == (0, 0, None)
    assert mail_server.dovecot.messages(user) == []
    assert len(list(out.glob(f"{name}/*/*/message.eml"))) == len(messages)  # once each
    with store.read() as repo:
        assert imports.pending_acknowledgements(repo.conn, name) == []
        assert mailbox_status(repo)[0]["imported"] == len(messages)


def test_messages_marked_acknowledged_but_still_listed_are_deleted_again(
    store: Store, tmp_path: Path, mail_server: MailServer
) -> None:
    """A store that marked messages acknowledged when DELE was sent (before QUIT made it
    final): a pass that still finds them on the server deletes them again."""
    name, user, out, messages = delete_after_import(store, tmp_path, mail_server, 20)
    home = tmp_path / "home"
    Poller(store, home, source_factory=quit_lost).poll(name)
    with store.begin() as repo:
        keys = [p.key for p in imports.pending_acknowledgements(repo.conn, name)]
        imports.acknowledged(repo.conn, name, keys)
    assert len(keys) == len(messages)
    assert mail_server.dovecot.messages(user) == messages

    again = Poller(store, home).poll(name)
    assert (again.imported, again.skipped, again.error) == (0, len(messages), None)
    assert mail_server.dovecot.messages(user) == []
    assert len(list(out.glob(f"{name}/*/*/message.eml"))) == len(messages)
