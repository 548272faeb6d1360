"""The IMAP source's own reader of SEARCH and FETCH responses, against a real Dovecot: bytes
exactly as the server holds them (whatever they contain), sizes and dates from the listing,
responses the server adds on its own left aside, and a session that stays in step after an
error; the import runs with the next batch fetched while one is delivered."""

from __future__ import annotations

import contextlib
import imaplib
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mailintake.engine.poll import Poller
from mailintake.errors import NetworkError, SourceError
from mailintake.sources.base import SourceItem
from mailintake.sources.imap import ImapSource
from mailintake.sources.imap_wire import Wire, internaldate, uid_set
from mailintake.store.repo import Store
from tests.support.dovecot import MailServer, answer_once, opened, xoauth2
from tests.support.mail import dovecot_mailbox, imap_source, imported, raw

AWKWARD = [
    b"Subject: plain\r\n\r\nhello\r\n",
    b"Subject: ends in a literal marker {12}\r\n\r\nline ending {5}\r\n{0}\r\n",
    b"Subject: looks like a response\r\n\r\n* 1 FETCH (UID 99 BODY[] {3}\r\n)\r\na1 OK done\r\n",
    b"Subject: dots\r\n\r\n.\r\n..\r\n.leading dot\r\n\r\n.\r\n",
    b"Subject: 8bit \xe9\xe8\r\n\r\n\x01\x7f\xff 8-bit bytes \xc3\xa9\r\n",
    b"Subject: big\r\n\r\n" + b"0123456789abcdef" * 400_000 + b"\r\n",
]


def test_uid_sets_are_written_as_ranges() -> None:
    assert uid_set([]) == ""
    assert uid_set([5]) == "5"
    assert uid_set([3, 1, 2, 7, 9, 10, 11, 11]) == "1:3,7,9:11"


def test_internaldate_is_read_with_its_zone() -> None:
    assert internaldate(" 4-Nov-2026 09:05:01 +0100") == datetime(2026, 11, 4, 8, 5, 1, tzinfo=UTC)
    assert internaldate("24-Dec-2026 23:00:00 -0530") == datetime(2026, 12, 25, 4, 30, tzinfo=UTC)
    assert internaldate("31-Foo-2026 00:00:00 +0000") is None
    assert internaldate("garbage") is None


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "implicit-tls"])
def test_bodies_come_byte_for_byte_whatever_they_hold(
    mail_server: MailServer, tls: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(mail_server.dovecot.ca_file))  # trust the server
    user = mail_server.fresh_user("fetch")
    mail_server.dovecot.deliver_many(user, AWKWARD)
    source = imap_source(mail_server, user, tls=tls)
    with opened(source):
        items = source.list_items()
        fetched = list(source.fetch(items))
    assert [body for _item, body in fetched] == AWKWARD
    assert [item.source["uid"] for item, _body in fetched] == [1, 2, 3, 4, 5, 6]
    assert [item.size for item in items] == [len(m) for m in AWKWARD]
    now = datetime.now(UTC)
    for item in items:
        assert item.received is not None
        assert item.received.tzinfo is not None
        assert abs(item.received - now) < timedelta(minutes=5)


def test_an_untrusted_certificate_says_what_to_trust(
    mail_server: MailServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dovecot's certificate comes from its own authority: not trusted until SSL_CERT_FILE
    names it, and the failure says so."""
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    user = mail_server.fresh_user("fetch")
    source = imap_source(mail_server, user, tls=True)
    with pytest.raises(NetworkError) as caught:
        source.open()
    message = str(caught.value)
    assert message.startswith(f"box: IMAP {mail_server.dovecot.host}:")
    assert "cannot connect: the server's TLS certificate could not be verified (" in message
    assert "check the host name and the trusted certificate authorities" in message
    assert "SSL_CERT_FILE" in message
    monkeypatch.setenv("SSL_CERT_FILE", str(mail_server.dovecot.ca_file))
    with opened(source):
        assert source.list_items() == []


def test_a_folder_that_is_not_there_is_refused_with_those_that_are(
    mail_server: MailServer,
) -> None:
    user = mail_server.fresh_user("fetch")
    with imaplib.IMAP4(mail_server.dovecot.host, mail_server.dovecot.imap_port) as imap:
        imap.authenticate("XOAUTH2", answer_once(xoauth2(user, mail_server.token(user))))
        assert imap.create("Invoices")[0] == "OK"
    dovecot = mail_server.dovecot
    source = imap_source(mail_server, user, folder="Invoice")
    try:
        with pytest.raises(SourceError) as caught:
            source.open()
    finally:
        source.close()  # as the engine does after a failed open
    message = str(caught.value)
    assert message.startswith(f"box: IMAP {dovecot.host}:{dovecot.imap_port}: cannot open folder")
    assert message.endswith("; the folders there: INBOX, Invoices")


def test_listing_leaves_out_what_is_imported(mail_server: MailServer) -> None:
    user = mail_server.fresh_user("fetch")
    mail_server.dovecot.deliver_many(user, [raw(n) for n in range(5)])
    source = imap_source(mail_server, user)
    with opened(source):
        first = source.list_items()
        old = {first[0].key, first[1].key}
        asked: list[str] = []

        def known(keys: list[str]) -> set[str]:
            asked.extend(keys)
            return {k for k in keys if k in old}

        items = source.list_items(known)
    assert asked == [i.key for i in first]
    assert [i.key for i in items] == [i.key for i in first[2:]]
    assert all(i.size is not None for i in items)


def test_responses_the_server_adds_are_left_aside(mail_server: MailServer) -> None:
    user = mail_server.fresh_user("fetch")
    messages = [raw(n) for n in range(4)]
    dovecot = mail_server.dovecot
    dovecot.deliver_many(user, messages)
    source = imap_source(mail_server, user)
    with opened(source):
        items = source.list_items()
        # Another session flags one message and expunges another; new mail arrives. The
        # server tells this session with untagged FETCH, EXPUNGE and EXISTS responses.
        with imaplib.IMAP4(dovecot.host, dovecot.imap_port, timeout=10) as other:
            other.authenticate("XOAUTH2", answer_once(xoauth2(user, mail_server.token(user))))
            other.select("INBOX")
            other.uid("STORE", "1", "+FLAGS", "(\\Flagged)")
            other.uid("STORE", "2", "+FLAGS", "(\\Deleted)")
            other.expunge()
        dovecot.deliver(user, raw(99))
        fetched = dict((item.source["uid"], body) for item, body in source.fetch(items))
        assert fetched == {1: messages[0], 3: messages[2], 4: messages[3]}
        assert [i.source["uid"] for i in source.list_items()] == [1, 3, 4, 5]


def test_a_refused_command_raises_and_the_session_stays_in_step(
    mail_server: MailServer,
) -> None:
    user = mail_server.fresh_user("fetch")
    mail_server.dovecot.deliver_many(user, [raw(1)])
    source = imap_source(mail_server, user)
    with opened(source):
        wire = Wire.of(source.client)
        with pytest.raises(imaplib.IMAP4.error, match="UID FETCH"):
            wire.command("UID FETCH x:y (BODY.PEEK[])")
        assert wire.search_all() == [1]
        assert list(wire.bodies([1]).values()) == [mail_server.dovecot.messages(user)[0]]


@contextlib.contextmanager
def fetching_meanwhile(
    source: ImapSource, items: list[SourceItem]
) -> Iterator[tuple[list[bytes], list[BaseException]]]:
    """Another thread fetches ``items`` in batches of 20 while the body runs (as the engine
    fetches ahead); what it fetched and what it raised, complete once the body is done."""
    fetched: list[bytes] = []
    failures: list[BaseException] = []

    def fetch_all() -> None:
        try:
            for start in range(0, len(items), 20):
                fetched.extend(body for _i, body in source.fetch(items[start : start + 20]))
        except BaseException as exc:  # reported by the caller
            failures.append(exc)

    reader = threading.Thread(target=fetch_all)
    reader.start()
    try:
        yield fetched, failures
    finally:
        reader.join()


def test_fetching_and_the_after_import_action_take_turns(mail_server: MailServer) -> None:
    """Two threads on one source (the engine fetches ahead while it acknowledges): every
    command gets its own answer."""
    user = mail_server.fresh_user("fetch")
    messages = [raw(n) for n in range(300)]
    mail_server.dovecot.deliver_many(user, messages)
    source = imap_source(mail_server, user, after_import="mark_read")
    with opened(source):
        items = source.list_items()
        with fetching_meanwhile(source, items) as (fetched, failures):
            for start in range(0, len(items), 10):
                source.acknowledge([i.source for i in items[start : start + 10]])
    assert failures == []
    assert fetched == messages
    assert all("\\Seen" in flags for flags in mail_server.dovecot.flags(user))


def test_listing_and_fetching_take_turns(mail_server: MailServer) -> None:
    """The engine lists the next page while batches are fetched in other threads: every
    command gets its own answer."""
    user = mail_server.fresh_user("fetch")
    messages = [raw(n) for n in range(300)]
    mail_server.dovecot.deliver_many(user, messages)
    source = imap_source(mail_server, user)
    source.list_page = 7
    with opened(source):
        items = source.list_items()
        with fetching_meanwhile(source, items) as (fetched, failures):
            listings = [[i for page in source.list_pages() for i in page] for _ in range(4)]
    assert failures == []
    assert fetched == messages
    assert all(listed == items for listed in listings)


@pytest.mark.parametrize("action", ["move", "delete"])
def test_an_import_of_several_batches_moves_or_deletes_each_once(
    store: Store, tmp_path: Path, mail_server: MailServer, action: str
) -> None:
    server, dovecot = mail_server, mail_server.dovecot
    user = server.fresh_user("fetch")
    messages = [raw(n) for n in range(430)]
    dovecot.deliver_many(user, messages)
    dovecot.create_folder(user, "Processed")
    name, out = f"batches-{action}", tmp_path / "out"
    dovecot_mailbox(
        store,
        server,
        out,
        name,
        user,
        after_import=action,
        move_to="Processed" if action == "move" else None,
    )
    result = Poller(store, tmp_path / "home").poll(name)
    assert (result.imported, result.failed, result.error) == (len(messages), 0, None)
    assert imported(out, name) == set(messages)
    assert dovecot.messages(user) == []
    expected = sorted(messages) if action == "move" else []
    assert sorted(dovecot.messages(user, "Processed")) == expected
