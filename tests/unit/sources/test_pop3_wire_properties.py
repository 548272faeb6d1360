"""The POP3 wire reader (pop3_wire) on answers generated to be awkward: dot-stuffed lines,
lines that are only a dot, CRLF and bare LF, a message without a final line ending, -ERR in
the middle of a pipeline, a connection closed at any byte, and every answer handed over in
chunks of any size. Each message comes out as the server holds it, under its number; each
failure raises poplib.error_proto (which the POP3 source turns into SourceError); poplib,
reading the same bytes, finds the same lines."""

from __future__ import annotations

import contextlib
import poplib
import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mailintake.errors import MessageUnavailable, SourceError
from mailintake.sources.pop3 import Pop3Settings, Pop3Source
from mailintake.sources.pop3_wire import Pipe
from tests.support.wire import Connection, ScriptedPOP3, split_points

# The same examples on every run (CI included), no example database left behind.
PROPERTIES = settings(deadline=None, derandomize=True, database=None)
# What a message may hold that looks like the end of an answer to a careless reader.
AWKWARD = [
    b".",
    b"..",
    b".\r\n",
    b"..\r\n",
    b"\r\n.\r\n",
    b"\r\n..\r\n",
    b"\r\n",
    b"\n",
    b"\r",
    b"\n.\n",
    b"+OK",
    b"-ERR no\r\n",
    b"x",
    b"\xe9\x00\xff",
]
MESSAGES = st.one_of(
    st.lists(st.sampled_from(AWKWARD), max_size=12).map(b"".join),
    st.binary(max_size=200),
)


def served(message: bytes, eol: bytes = b"\r\n") -> bytes:
    """A message as a server sends it in a RETR answer (RFC 1939 §3): a line ending added
    if it has none at the end, each line that begins with a dot given one more, and the
    dot line. Lines end at LF, as for poplib and the servers that mail clients read; the
    server writes the lines it adds with ``eol``."""
    body = ended(message, eol)
    stuffed = re.sub(rb"(?m)^\.", b"..", body) if body else b""
    return stuffed + b"." + eol


def ended(message: bytes, eol: bytes = b"\r\n") -> bytes:
    """The message as a client gets it back: with a line ending at the end."""
    return message if not message or message.endswith(b"\n") else message + eol


def answers(
    messages: dict[int, bytes],
    refused: frozenset[int] = frozenset(),
    uidls: dict[int, bytes] | None = None,
    sizes: dict[int, int] | None = None,
    eol: bytes = b"\r\n",
) -> Connection:
    """A server holding these messages (their UIDLs ``uid-N`` and their sizes as LIST tells
    them unless given), which refuses RETR and DELE of those refused (as when another
    session deleted them) with -ERR. The lines it writes itself end with ``eol``."""

    def answer(line: bytes) -> bytes:
        command, _, argument = line.partition(b" ")
        if command in (b"UIDL", b"LIST"):
            listed = b"".join(
                b"%d %s"
                % (
                    n,
                    (uidls or {}).get(n, b"uid-%d" % n)
                    if command == b"UIDL"
                    else b"%d" % (sizes or {}).get(n, len(m)),
                )
                + eol
                for n, m in messages.items()
            )
            return b"+OK" + eol + listed + b"." + eol
        number = int(argument.split(b" ")[0])  # TOP has the lines too
        if number in refused or number not in messages:
            return b"-ERR no such message" + eol
        if command == b"RETR":
            message = messages[number]
            return b"+OK %d octets" % len(message) + eol + served(message, eol)
        assert command == b"DELE"
        return b"+OK message deleted" + eol

    return Connection(answer, greeting=b"+OK ready" + eol)


def pipe_on(connection: Connection, pipelining: bool) -> Pipe:
    client = ScriptedPOP3(connection)
    return Pipe(client, pipelining=pipelining)


def poplib_lines(message: bytes, eol: bytes) -> list[bytes]:
    connection = answers({1: message}, eol=eol)
    return ScriptedPOP3(connection).retr(1)[1]


def lines_of(data: bytes) -> list[bytes]:
    """The lines of a message without their endings (CRLF or LF), as poplib gives them."""
    return [re.sub(rb"\r?\n$", b"", line) for line in re.findall(rb"[^\n]*\n|[^\n]+$", data)]


SIZES = st.one_of(st.just([1 << 20]), st.lists(st.integers(1, 40), min_size=1, max_size=6))
MAILBOXES = st.lists(MESSAGES, min_size=1, max_size=8)
EOLS = st.sampled_from([b"\r\n", b"\n"])  # how the server ends the lines it writes


# A server that sends messages as stored, with bare LF line endings, then the dot line.
STORED_WITH_LF = [b"Subject: one\n\n.dot\nlast\n", b"Subject: two\r\n", b"Subject: three\n"]
# A server that writes its own lines (status, dot line) with bare LF.
STORED_WITH_CRLF = [b"Subject: one\r\n\r\nbody\r\n", b"Subject: two\r\n\r\n.\r\n"]


@settings(PROPERTIES, max_examples=150)
@given(mailbox=MAILBOXES, pipelining=st.booleans(), sizes=SIZES, eol=EOLS)
@example(mailbox=STORED_WITH_LF, pipelining=True, sizes=[1 << 20], eol=b"\r\n")
@example(mailbox=STORED_WITH_LF, pipelining=False, sizes=[1 << 20], eol=b"\r\n")
@example(mailbox=STORED_WITH_CRLF, pipelining=True, sizes=[1 << 20], eol=b"\n")
def test_each_message_comes_as_the_server_holds_it(
    mailbox: list[bytes], pipelining: bool, sizes: list[int], eol: bytes
) -> None:
    connection = answers(dict(enumerate(mailbox, start=1)), eol=eol)
    connection.stream.sizes = sizes
    pipe = pipe_on(connection, pipelining)
    numbers = list(range(1, len(mailbox) + 1))
    got = list(pipe.retrieve(numbers))
    assert got == [(n, ended(m, eol)) for n, m in zip(numbers, mailbox, strict=True)]
    assert connection.commands == [b"RETR %d" % n for n in numbers]


@settings(PROPERTIES, max_examples=150)
@given(message=MESSAGES, eol=EOLS)
@example(message=STORED_WITH_CRLF[0], eol=b"\n")
def test_poplib_finds_the_same_lines(message: bytes, eol: bytes) -> None:
    # poplib refuses lines over 2048 bytes, and drops a CR that begins a bare-LF line.
    if any(len(line) > 2000 or line.startswith(b"\r") for line in lines_of(ended(message))):
        return
    pipe = pipe_on(answers({1: message}, eol=eol), pipelining=False)
    [(_number, got)] = list(pipe.retrieve([1]))
    assert lines_of(got) == poplib_lines(message, eol)


@settings(PROPERTIES, max_examples=80)
@given(
    mailbox=MAILBOXES,
    refused=st.integers(0, 7),
    pipelining=st.booleans(),
    sizes=SIZES,
    eol=EOLS,
)
def test_err_in_the_middle_raises_and_the_session_stays_in_step(
    mailbox: list[bytes], refused: int, pipelining: bool, sizes: list[int], eol: bytes
) -> None:
    refused = refused % len(mailbox) + 1
    connection = answers(dict(enumerate(mailbox, start=1)), frozenset([refused]), eol=eol)
    connection.stream.sizes = sizes
    pipe = pipe_on(connection, pipelining)
    got: list[tuple[int, bytes]] = []
    numbers = list(range(1, len(mailbox) + 1))
    with pytest.raises(poplib.error_proto, match="-ERR no such message"):
        got.extend(pipe.retrieve(numbers))
    assert got == [(n, ended(mailbox[n - 1], eol)) for n in range(1, refused)]
    if refused < len(mailbox):  # the next command gets its own answer
        last = len(mailbox)
        assert list(pipe.retrieve([last])) == [(last, ended(mailbox[-1], eol))]
    with pytest.raises(poplib.error_proto, match="-ERR no such message"):
        pipe.delete(numbers)


@settings(PROPERTIES, max_examples=100)
@given(mailbox=MAILBOXES, pipelining=st.booleans(), cut=st.integers(0, 10**6), eol=EOLS)
def test_a_connection_closed_at_any_byte_raises(
    mailbox: list[bytes], pipelining: bool, cut: int, eol: bytes
) -> None:
    greeting = len(b"+OK ready" + eol)
    answered = sum(len(b"+OK %d octets" % len(m) + eol + served(m, eol)) for m in mailbox)
    connection = answers(dict(enumerate(mailbox, start=1)), eol=eol)
    connection.stream.limit = greeting + cut % answered
    pipe = pipe_on(connection, pipelining)
    got: list[tuple[int, bytes]] = []
    with pytest.raises(poplib.error_proto):
        got.extend(pipe.retrieve(list(range(1, len(mailbox) + 1))))
    assert got == [(n, ended(mailbox[n - 1], eol)) for n, _m in got]


@pytest.mark.parametrize("eol", [b"\r\n", b"\n"], ids=["crlf", "lf"])
def test_every_split_of_an_answer_reads_the_same(eol: bytes) -> None:
    mailbox = [b".\r\n..\r\n.x\r\n\r\n.\r\n", b"", b"a\n.\nb", b"last\r\n.."]
    whole = b"".join(b"+OK" + eol + served(m, eol) for m in mailbox)
    for sizes in split_points(whole):
        connection = answers(dict(enumerate(mailbox, start=1)), eol=eol)
        connection.stream.sizes = sizes
        pipe = pipe_on(connection, pipelining=True)
        got = list(pipe.retrieve([1, 2, 3, 4]))
        assert got == [(n, ended(m, eol)) for n, m in enumerate(mailbox, start=1)], sizes


def test_a_refused_retr_fails_that_message_alone_and_a_refused_dele_is_a_source_error() -> None:
    """Listed, then deleted by another session before it is read: its RETR's -ERR fails that
    message alone (the others come); a DELE refused is a SourceError."""
    mailbox = {1: b"Subject: one\r\n\r\n", 2: b"Subject: two\r\n\r\n"}
    source = Pop3Source(
        Pop3Settings("scripted", 110, "none", "user", "user", "delete"), lambda: "token", "box"
    )
    source.client = ScriptedPOP3(answers(mailbox, frozenset([2])))
    source._pipe = Pipe(source.client, pipelining=True)
    items = source.list_items()
    assert [(i.source["uidl"], i.size) for i in items] == [("uid-1", 16), ("uid-2", 16)]
    [(first, body), (second, refused)] = list(source.fetch(items))
    assert (first, body) == (items[0], mailbox[1])
    assert second == items[1]
    assert isinstance(refused, MessageUnavailable)
    assert str(refused).startswith("box: POP3 scripted:110: RETR of message uid-2 answered -ERR")
    with pytest.raises(SourceError, match=r"^box: POP3 scripted:110: DELE: .*-ERR no such"):
        source.acknowledge([i.source for i in items])


@settings(PROPERTIES, max_examples=60)
@given(
    listed=st.lists(
        st.tuples(
            st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=70),
            st.integers(0, 10**9),
        ),
        max_size=8,
        unique_by=lambda pair: pair[0],
    ),
    sizes=SIZES,
)
def test_the_multi_line_uidl_and_list_answers_list_every_message(
    listed: list[tuple[str, int]], sizes: list[int]
) -> None:
    uidls = {n: uidl.encode() for n, (uidl, _size) in enumerate(listed, start=1)}
    told = {n: size for n, (_uidl, size) in enumerate(listed, start=1)}
    connection = answers({n: b"" for n in uidls}, uidls=uidls, sizes=told)
    connection.stream.sizes = sizes
    source = Pop3Source(
        Pop3Settings("scripted", 110, "none", "user", "user", "keep"), lambda: "token", "box"
    )
    source.client = ScriptedPOP3(connection)
    source._pipe = Pipe(source.client, pipelining=False)
    items = source.list_items()
    assert [(i.source["uidl"], i.size) for i in items] == listed
    assert len({i.key for i in items}) == len(items)


@settings(PROPERTIES, max_examples=60)
@given(mailbox=MAILBOXES, read=st.integers(0, 7), pipelining=st.booleans(), sizes=SIZES, eol=EOLS)
def test_a_reader_that_stops_early_leaves_the_session_in_step(
    mailbox: list[bytes], read: int, pipelining: bool, sizes: list[int], eol: bytes
) -> None:
    connection = answers(dict(enumerate(mailbox, start=1)), eol=eol)
    connection.stream.sizes = sizes
    pipe = pipe_on(connection, pipelining)
    numbers = list(range(1, len(mailbox) + 1))
    read = read % len(mailbox)
    answered = pipe.retrieve(numbers)
    got = [next(answered) for _ in range(read)]
    answered.close()
    assert got == [(n, ended(mailbox[n - 1], eol)) for n in numbers[:read]]
    assert list(pipe.retrieve(numbers[::-1])) == [
        (n, ended(mailbox[n - 1], eol)) for n in numbers[::-1]
    ]


@settings(PROPERTIES, max_examples=40)
@given(
    sizes=st.lists(st.integers(0, 10**9), min_size=1, max_size=5),
    extra=st.sampled_from([b"", b" 0", b" 17 x-info", b"  "]),
)
@example(sizes=[42], extra=b" more-information")
def test_a_list_line_may_say_more_after_the_size(sizes: list[int], extra: bytes) -> None:
    """RFC 1939 §5: nothing is required of what follows the size in a LIST line."""
    told = dict(enumerate(sizes, start=1))
    connection = answers({n: b"" for n in told}, sizes=told)
    listed = connection.answer

    def answer(line: bytes) -> bytes:
        text = listed(line)
        return (
            re.sub(rb"(?m)^(\d+ \d+)\r$", rb"\1" + extra + rb"\r", text)
            if line == b"LIST"
            else text
        )

    connection.answer = answer
    source = Pop3Source(
        Pop3Settings("scripted", 110, "none", "user", "user", "keep"), lambda: "token", "box"
    )
    source.client = ScriptedPOP3(connection)
    source._pipe = Pipe(source.client, pipelining=False)
    assert [i.size for i in source.list_items()] == sizes


@settings(PROPERTIES, max_examples=100)
@given(
    garbage=st.lists(
        st.one_of(
            st.sampled_from([b"+OK", b"-ERR", b".", b"..", b"\r\n", b"\n", b"\r", b" "]),
            st.binary(max_size=6),
        ),
        max_size=30,
    ).map(b"".join),
    pipelining=st.booleans(),
)
def test_whatever_the_server_sends_the_reader_returns_or_raises_error_proto(
    garbage: bytes, pipelining: bool
) -> None:
    connection = Connection(lambda line: b"", greeting=b"+OK ready\r\n")
    pipe = pipe_on(connection, pipelining)
    connection.stream.feed(garbage)
    with contextlib.suppress(poplib.error_proto):
        list(pipe.retrieve([1, 2, 3]))
    with contextlib.suppress(poplib.error_proto):
        pipe.delete([1, 2])
