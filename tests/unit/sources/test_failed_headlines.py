"""A message the server fails to give alone is shown with its subject and sender when the
server gives its headers: IMAP ``BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)]``, POP3 ``TOP n 0``,
asked for once and only for such a message. A refusal, or a session lost under it, leaves
them unknown and the others are fetched as before."""

from __future__ import annotations

import re

import pytest

from mailintake.errors import MessageUnavailable, SourceError
from mailintake.sources.base import SourceItem
from mailintake.sources.imap import ImapSettings, ImapSource
from mailintake.sources.pop3 import Pop3Settings, Pop3Source
from mailintake.sources.pop3_wire import Pipe
from tests.support.wire import Closing, Connection, ScriptedPOP3, SignedIn

HEAD = (
    b"Subject: =?utf-8?q?Rechnung_M=C3=A4rz?=\r\nFrom: =?utf-8?q?J=C3=BCrgen?= <j@example.com>\r\n"
)


def _uids(text: bytes) -> set[int]:
    found: set[int] = set()
    for part in text.decode().split(","):
        first, _, last = part.partition(":")
        found.update(range(int(first), int(last or first) + 1))
    return found


def imap_server(
    bodies: dict[int, bytes], poisoned: set[int], heads: dict[int, bytes]
) -> Connection:
    """Bodies of the poisoned UIDs are refused (NO); of those, the headers of ``heads``
    come, of the others are refused too."""

    def answer(line: bytes) -> bytes:
        tag, _, command = line.partition(b" ")
        fetch = re.fullmatch(rb"UID FETCH (\S+) \(UID (BODY\.PEEK\[[^]]*\])\)", command)
        assert fetch is not None, command
        uids = _uids(fetch.group(1))
        if fetch.group(2) != b"BODY.PEEK[]":
            [uid] = uids
            if uid not in heads:
                return tag + b" NO [SERVERBUG] cannot\r\n"
            head = heads[uid]
            return (
                b"* 1 FETCH (UID %d BODY[HEADER.FIELDS (SUBJECT FROM)] {%d}\r\n%s)\r\n"
                % (uid, len(head), head)
                + tag
                + b" OK done\r\n"
            )
        if uids & poisoned:
            return tag + b" NO [SERVERBUG] cannot read\r\n"
        return (
            b"".join(
                b"* %d FETCH (UID %d BODY[] {%d}\r\n%s)\r\n" % (u, u, len(bodies[u]), bodies[u])
                for u in sorted(uids)
            )
            + tag
            + b" OK done\r\n"
        )

    return Connection(answer)


def imap_source(connection: Connection) -> ImapSource:
    source = ImapSource(
        ImapSettings("scripted", 143, "none", "user", "user", "INBOX", "keep", None),
        lambda: "token",
        "box",
    )
    source.client, source.uidvalidity = SignedIn(connection), 7
    return source


def items_of(uids: list[int]) -> list[SourceItem]:
    return [
        SourceItem(f"INBOX-7-{u}", {"folder": "INBOX", "uidvalidity": 7, "uid": u}) for u in uids
    ]


def test_imap_a_message_that_fails_alone_comes_with_its_subject_and_sender() -> None:
    bodies = {u: b"Subject: %d\r\n\r\nbody\r\n" % u for u in range(1, 6)}
    connection = imap_server(bodies, poisoned={2, 4}, heads={2: HEAD + b"\r\n"})
    source = imap_source(connection)
    got = list(source.fetch(items_of([1, 2, 3, 4, 5])))
    assert [(i.source["uid"], b) for i, b in got if isinstance(b, bytes)] == [
        (u, bodies[u]) for u in (1, 3, 5)
    ]
    failed = {i.source["uid"]: (i.subject, i.sender, b) for i, b in got if not isinstance(b, bytes)}
    assert set(failed) == {2, 4}
    assert failed[2][:2] == ("Rechnung März", "Jürgen <j@example.com>")
    assert failed[4][:2] == (None, None)  # its headers refused too: unknown
    assert all(isinstance(f[2], MessageUnavailable) for f in failed.values())
    asked = [c for c in connection.commands if b"HEADER.FIELDS" in c]
    assert [c.split()[3] for c in asked] == [b"2", b"4"]  # once each, for these alone


def test_imap_a_session_lost_asking_for_the_headers_leaves_them_unknown() -> None:
    """The server drops the session at the headers: they stay unknown, what was fetched is
    handed on, and the connection is closed so the next command signs in again."""
    bodies = {u: b"Subject: %d\r\n\r\nbody\r\n" % u for u in range(1, 4)}
    scripted = imap_server(bodies, poisoned={2}, heads={})
    told = scripted.answer

    def answer(line: bytes) -> bytes:
        return b"* BYE FETCH failed\r\n" if b"HEADER.FIELDS" in line else told(line)

    scripted.answer = answer
    source = imap_source(scripted)
    closed: list[bool] = []

    class Dropped(Closing):
        def shutdown(self) -> None:
            closed.append(True)

    source.client = Dropped(scripted)
    got = list(source.fetch(items_of([1, 2, 3])))
    assert [(i.source["uid"], i.subject, isinstance(b, bytes)) for i, b in got] == [
        (1, None, True),
        (2, None, False),
        (3, None, True),
    ]
    assert closed == [True]


def pop3_server(
    messages: dict[int, bytes], refused: set[int], heads: dict[int, bytes]
) -> Connection:
    def answer(line: bytes) -> bytes:
        command, _, argument = line.partition(b" ")
        if command in (b"UIDL", b"LIST"):
            listed = b"".join(
                b"%d %s\r\n" % (n, b"uid-%d" % n if command == b"UIDL" else b"%d" % len(m))
                for n, m in messages.items()
            )
            return b"+OK\r\n" + listed + b".\r\n"
        number = int(argument.split()[0])
        if command == b"TOP":
            assert argument.split()[1] == b"0", line
            if number not in heads:
                return b"-ERR TOP not supported\r\n"
            return b"+OK\r\n" + heads[number] + b".\r\n"
        assert command == b"RETR", line
        if number in refused:
            return b"-ERR cannot read message\r\n"
        return b"+OK\r\n" + messages[number] + b".\r\n"

    return Connection(answer, greeting=b"+OK ready\r\n")


def test_pop3_a_message_whose_retr_fails_comes_with_its_subject_and_sender() -> None:
    messages = {n: b"Subject: %d\r\n\r\nbody\r\n" % n for n in range(1, 6)}
    head = HEAD + b"To: x@example.com\r\n\r\n"
    connection = pop3_server(messages, refused={2, 4}, heads={2: head})
    source = Pop3Source(
        Pop3Settings("scripted", 110, "none", "user", "user", "keep"), lambda: "token", "box"
    )
    source.client = ScriptedPOP3(connection)
    source._pipe = Pipe(source.client, pipelining=True)
    got = list(source.fetch(source.list_items()))
    assert [(i.source["uidl"], b) for i, b in got if isinstance(b, bytes)] == [
        (f"uid-{n}", messages[n]) for n in (1, 3, 5)
    ]
    failed = {i.source["uidl"]: (i.subject, i.sender) for i, b in got if not isinstance(b, bytes)}
    assert failed == {
        "uid-2": ("Rechnung März", "Jürgen <j@example.com>"),
        "uid-4": (None, None),  # no TOP: unknown
    }
    assert [c for c in connection.commands if c.startswith(b"TOP")] == [b"TOP 2 0", b"TOP 4 0"]


class Closable(Connection):
    """A socket that, once closed, refuses to send."""

    closed = False

    def close(self) -> None:
        self.closed = True

    def send(self, data: bytes) -> None:
        if self.closed:
            raise OSError("Bad file descriptor")
        super().send(data)

    sendall = send


def test_pop3_a_connection_lost_at_top_leaves_them_unknown_and_hands_on_the_rest() -> None:
    """The connection ends inside TOP's answer: the subject stays unknown, the messages read
    are handed on, and the connection is closed: the next command fails, never reads out
    of step."""
    messages = {n: b"Subject: %d\r\n\r\nbody\r\n" % n for n in range(1, 4)}
    server = pop3_server(messages, refused={2}, heads={})
    scripted = Closable(server.answer, greeting=b"+OK ready\r\n")
    told = scripted.answer
    scripted.answer = lambda line: b"+OK\r\nSubject: cut" if line.startswith(b"TOP") else told(line)
    source = Pop3Source(
        Pop3Settings("scripted", 110, "none", "user", "user", "keep"), lambda: "token", "box"
    )
    source.client = ScriptedPOP3(scripted)
    source._pipe = Pipe(source.client, pipelining=True)
    items = source.list_items()
    scripted.stream.limit = scripted.stream.sent + 200  # the connection ends inside TOP
    got = list(source.fetch(items))
    assert [(i.source["uidl"], i.subject, isinstance(b, bytes)) for i, b in got] == [
        ("uid-1", None, True),
        ("uid-2", None, False),
        ("uid-3", None, True),
    ]
    assert scripted.closed
    with pytest.raises(SourceError, match="RETR: Bad file descriptor"):
        list(source.fetch(items))
