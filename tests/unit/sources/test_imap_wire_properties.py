"""The IMAP bulk reader (imap_wire) on server bytes generated to be awkward: literals of every
size holding what looks like protocol, quoted bodies with escapes, items in any order, the
responses a server adds on its own, an error or a BYE in the middle, a connection closed at
any byte, and every response handed over in chunks of any size. Each message comes out byte
for byte with its UID, in order (a listing's sizes and dates with theirs), and each failure
raises imaplib's error or abort (which the IMAP source turns into SourceError); imaplib
itself, reading the same bytes, agrees."""

from __future__ import annotations

import contextlib
import imaplib
import itertools
import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from imapclient.exceptions import IMAPClientError

from mailintake.errors import NetworkError, SourceError
from mailintake.sources.imap import ImapSettings, ImapSource
from mailintake.sources.imap_wire import LITERAL_PIECE, Listed, Wire, internaldate, uid_set
from tests.support.wire import Closing, Connection, SignedIn, split_points

# The same examples on every run (CI included), no example database left behind.
PROPERTIES = settings(deadline=None, derandomize=True, database=None)
# What a message may hold that looks like IMAP to a careless reader.
AWKWARD = [
    b")",
    b"(",
    b"\r\n",
    b"{5}",
    b"{5}\r\n",
    b"{0}\r\n",
    b"* ",
    b"A001 OK done\r\n",
    b"mi1 OK done\r\n",
    b"* BYE shutting down\r\n",
    b"* 1 FETCH (UID 9 BODY[] {3}\r\n",
    b'"',
    b"\\",
    b" UID 7",
    b"BODY[] ",
    b"\xff\x00\xe9",
    b"\r",
    b"\n",
    b"x",
]
# A quoted string holds no CR, LF or NUL (RFC 9051 §4.3); quotes and backslashes are escaped.
QUOTED = [b'"', b"\\", b" UID 99", b" BODY[] ", b")", b"(", b"{5}", b"* ", b"mi1 OK", b"\xe9"]
QUOTABLE = st.binary(max_size=40).map(lambda b: bytes(c for c in b if c not in b"\0\r\n"))
LITERAL_BODIES = st.one_of(
    st.binary(max_size=300),
    st.lists(st.sampled_from(AWKWARD), max_size=10).map(b"".join),
)
QUOTED_BODIES = st.lists(st.one_of(st.sampled_from(QUOTED), QUOTABLE), max_size=6).map(b"".join)
NOISE = st.one_of(
    st.integers(0, 99).map(lambda n: b"* %d EXISTS\r\n" % n),
    st.integers(1, 99).map(lambda n: b"* %d EXPUNGE\r\n" % n),
    st.integers(0, 99).map(lambda n: b"* %d RECENT\r\n" % n),
    st.integers(1, 99).map(lambda n: b"* %d FETCH (FLAGS (\\Seen))\r\n" % n),
    st.integers(1, 99).map(lambda n: b"* %d FETCH (UID %d FLAGS (\\Flagged $X))\r\n" % (n, n)),
    st.just(b"* OK [ALERT] the mailbox is nearly full\r\n"),
    st.just(b"* NO [ALERT] a warning, not a failure\r\n"),
)

# Status text is text (RFC 9051 §7.1, resp-text): never a literal, whatever it ends with.
TEXTS = st.sampled_from([b"[SERVERBUG] it ends here", b"see {5}", b"[ALERT] {0}"])
TEXT_NOISE = st.one_of(
    NOISE,
    TEXTS.map(lambda text: b"* OK " + text + b"\r\n"),
    TEXTS.map(lambda text: b"* NO " + text + b"\r\n"),
)


@dataclass(frozen=True)
class Message:
    """One message's FETCH response: its items in the order the server chose."""

    seq: int
    uid: int
    body: bytes
    quoted: bool
    extras: tuple[bytes, ...]
    order: tuple[int, ...]  # a permutation of the items: UID, BODY[], the extras

    def render(self) -> bytes:
        if self.quoted:
            escaped = re.sub(rb'(["\\])', rb"\\\1", self.body)
            body = b'BODY[] "' + escaped + b'"'
        else:
            body = b"BODY[] {%d}\r\n" % len(self.body) + self.body
        items = [b"UID %d" % self.uid, body, *self.extras]
        ordered = [items[i] for i in self.order]
        return b"* %d FETCH (" % self.seq + b" ".join(ordered) + b")\r\n"


@dataclass(frozen=True)
class Script:
    """What the server sends for one UID FETCH: responses, then how it ends (the tagged
    ``OK``, ``NO`` or ``BAD``, or ``* BYE`` and the connection closed); ``cut`` closes the
    connection after that many bytes."""

    parts: tuple[Message | bytes, ...]
    end: str
    cut: int | None = None
    text: bytes = b"[SERVERBUG] it ends here"  # of the tagged response or the BYE

    def render(self, tag: bytes) -> bytes:
        data = b"".join(p.render() if isinstance(p, Message) else p for p in self.parts)
        if self.end == "BYE":
            data += b"* BYE " + self.text + b"\r\n"
        else:
            data += tag + b" " + self.end.encode() + b" " + self.text + b"\r\n"
        return data if self.cut is None else data[: self.cut]

    @property
    def messages(self) -> list[tuple[int, bytes]]:
        return [(p.uid, p.body) for p in self.parts if isinstance(p, Message)]


@st.composite
def messages(draw: st.DrawFn, seq: int, uid: int) -> Message:
    quoted = draw(st.booleans())
    body = draw(QUOTED_BODIES if quoted else LITERAL_BODIES)
    extras = draw(
        st.lists(
            st.sampled_from(
                [
                    b"RFC822.SIZE %d" % len(body),
                    b"FLAGS (\\Seen $Invoice)",
                    b'INTERNALDATE " 4-Nov-2026 09:00:00 +0100"',
                    b"MODSEQ (12345)",
                ]
            ),
            unique=True,
            max_size=3,
        )
    )
    order = draw(st.permutations(range(2 + len(extras))))
    return Message(seq, uid, body, quoted, tuple(extras), tuple(order))


@st.composite
def scripts(
    draw: st.DrawFn, ends: tuple[str, ...] = ("OK",), noise: st.SearchStrategy[bytes] = NOISE
) -> Script:
    count = draw(st.integers(0, 5))
    uids = sorted(
        draw(st.lists(st.integers(1, 10_000), min_size=count, max_size=count, unique=True))
    )
    parts: list[Message | bytes] = []
    for seq, uid in enumerate(uids, start=1):
        parts.extend(draw(st.lists(noise, max_size=2)))
        parts.append(draw(messages(seq, uid)))
    parts.extend(draw(st.lists(noise, max_size=2)))
    return Script(tuple(parts), draw(st.sampled_from(ends)), text=draw(TEXTS))


def fetch_answer(script: Script) -> Any:
    def answer(line: bytes) -> bytes:
        tag, _, command = line.partition(b" ")
        if command == b"CAPABILITY":
            return b"* CAPABILITY IMAP4rev1\r\n" + tag + b" OK done\r\n"
        assert command.startswith(b"UID FETCH ")
        assert command.endswith(b" (UID BODY.PEEK[])")
        return script.render(tag)

    return answer


def read(script: Script, sizes: list[int]) -> dict[int, bytes]:
    """What the reader makes of the script, the server's bytes arriving in chunks of sizes."""
    connection = Connection(fetch_answer(script), sizes=sizes)
    return Wire(connection).bodies([uid for uid, _body in script.messages] or [1])


class ScriptedIMAP4(imaplib.IMAP4):
    """The standard library's client on the scripted connection."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        super().__init__()

    def open(self, host: str = "", port: int = 0, timeout: float | None = None) -> None:
        self.file = self.connection.file

    def send(self, data: bytes) -> None:
        self.connection.send(data)

    def shutdown(self) -> None:
        pass


def imaplib_fetch(script: Script, sizes: list[int]) -> tuple[str, list[tuple[int, bytes]]]:
    """imaplib's reading of the same bytes: its status, and each (UID, BODY[]) found in the
    responses it framed (tokenized here: quoted strings, atoms, parentheses, literals)."""
    connection = Connection(fetch_answer(script), greeting=b"* OK ready\r\n", sizes=sizes)
    imap = ScriptedIMAP4(connection)
    imap.state = "SELECTED"
    status, data = imap.uid("FETCH", "1:*", "(UID BODY.PEEK[])")
    responses: list[list[bytes | tuple[bytes]]] = []
    if status != "OK":
        return status, []
    for part in data:
        if part is None:  # no FETCH response at all
            continue
        text = part[0] if isinstance(part, tuple) else part
        assert isinstance(text, bytes)
        if re.match(rb"\d+ \(", text):
            responses.append([])
        tokens = _tokens(text)
        if isinstance(part, tuple):
            tokens[-1] = (part[1],)  # the literal announced at the end of the line
        responses[-1].extend(tokens)
    found = []
    for tokens in responses:
        uid = body = None
        for name, value in itertools.pairwise(tokens):
            if name == b"UID" and isinstance(value, bytes):
                uid = int(value)
            if name == b"BODY[]":
                body = value[0] if isinstance(value, tuple) else value
        if uid is not None and body is not None:
            found.append((uid, body))
    return status, found


def _tokens(text: bytes) -> list[bytes | tuple[bytes]]:
    """IMAP tokens; a quoted string is a 1-tuple of its unescaped value, like a literal."""
    tokens: list[bytes | tuple[bytes]] = []
    for quoted, literal, atom in re.findall(
        rb'"((?:[^"\\]|\\.)*)"|(\{\d+\}$)|([^\s()"]+)', text, flags=re.DOTALL
    ):
        if atom:
            tokens.append(atom)
        elif literal:
            tokens.append((b"",))
        else:
            tokens.append((re.sub(rb"\\(.)", rb"\1", quoted, flags=re.DOTALL),))
    return tokens


sizes_strategy = st.one_of(
    st.just([1 << 20]),
    st.lists(st.integers(1, 64), min_size=1, max_size=8),
)


# A tiny message sent quoted, its UID after it: what the string says is not the UID.
QUOTED_UID_AFTER = Script((Message(1, 2, b" UID 99", True, (), (1, 0)),), "OK")


@settings(PROPERTIES, max_examples=120)
@given(script=scripts(), sizes=sizes_strategy)
@example(script=QUOTED_UID_AFTER, sizes=[1 << 20])
def test_each_message_comes_byte_for_byte_with_its_uid(script: Script, sizes: list[int]) -> None:
    got = read(script, sizes)
    assert list(got.items()) == script.messages
    assert imaplib_fetch(script, sizes) == ("OK", script.messages)


@settings(PROPERTIES, max_examples=60)
@given(script=scripts(noise=TEXT_NOISE), sizes=sizes_strategy)
@example(
    script=Script((b"* OK [ALERT] see {5}\r\n", Message(1, 3, b"x", False, (), (0, 1))), "OK"),
    sizes=[1 << 20],
)
def test_status_text_is_never_read_as_a_literal(script: Script, sizes: list[int]) -> None:
    """imaplib takes ``* OK see {5}`` for a literal: only the reader is held to this."""
    assert list(read(script, sizes).items()) == script.messages


@settings(PROPERTIES, max_examples=60)
@given(script=scripts(ends=("NO", "BAD", "BYE")), sizes=sizes_strategy)
def test_an_error_or_bye_in_the_middle_raises_what_imapclient_raises(
    script: Script, sizes: list[int]
) -> None:
    with pytest.raises(IMAPClientError) as caught:
        read(script, sizes)
    if script.end == "BYE":
        assert type(caught.value) is imaplib.IMAP4.abort
        with pytest.raises(imaplib.IMAP4.abort):
            imaplib_fetch(script, sizes)
    else:
        assert type(caught.value) is imaplib.IMAP4.error
        assert f"UID FETCH: {script.end} {script.text.decode()}" in str(caught.value)
        if script.end == "NO":
            assert imaplib_fetch(script, sizes)[0] == "NO"
        else:
            with pytest.raises(imaplib.IMAP4.error) as standard:
                imaplib_fetch(script, sizes)
            assert type(standard.value) is imaplib.IMAP4.error


@settings(PROPERTIES, max_examples=80)
@given(script=scripts(ends=("OK", "NO", "BAD", "BYE")), data=st.data())
def test_a_connection_closed_at_any_byte_raises_abort(script: Script, data: st.DataObject) -> None:
    whole = len(script.render(b"mi0"))
    cut = data.draw(st.integers(0, whole - 1), label="cut")
    cut_short = Script(script.parts, script.end, cut)
    with pytest.raises(imaplib.IMAP4.abort):
        read(cut_short, [1 << 20])
    with pytest.raises(imaplib.IMAP4.abort):
        imaplib_fetch(cut_short, [1 << 20])


def test_every_split_of_a_response_reads_the_same() -> None:
    script = Script(
        (
            b"* 3 EXISTS\r\n",
            Message(1, 7, b"a {5}\r\n)\r\nmi1 OK x\r\n", False, (b"FLAGS ()",), (1, 0, 2)),
            b"* 1 FETCH (FLAGS (\\Seen))\r\n",
            Message(2, 9, b'q "uoted" \\ UID 3', True, (), (1, 0)),
            Message(3, 12, b"", False, (), (0, 1)),
        ),
        "OK",
    )
    whole = script.render(b"mi0")
    for sizes in split_points(whole):
        assert list(read(script, sizes).items()) == script.messages, sizes


@pytest.mark.parametrize("size", [10**11, 10**25], ids=["more-than-memory", "over-an-index"])
def test_a_literal_announced_larger_than_memory_raises_abort(size: int) -> None:
    """A server that announces more than it sends (or than can be held) and closes: abort,
    as for any connection closed inside a literal (imaplib raises MemoryError here)."""
    script = Script((b"* 1 FETCH (UID 1 BODY[] {%d}\r\nthe start of it" % size,), "OK")
    with pytest.raises(imaplib.IMAP4.abort, match="closed the connection inside a literal"):
        read(script, [1 << 20])


def test_a_literal_larger_than_one_piece_comes_whole() -> None:
    body = bytes(range(256)) * ((LITERAL_PIECE + 3) // 256) + b"end"
    script = Script((Message(1, 5, body, False, (), (0, 1)),), "OK")
    assert read(script, [1 << 20]) == {5: body}


@st.composite
def listings(draw: st.DrawFn) -> tuple[bytes, dict[int, Listed]]:
    """A UID FETCH of sizes and dates: each message's items in any order, with flag updates
    (some naming a UID) and other untagged responses between them."""
    count = draw(st.integers(0, 6))
    uids = draw(st.lists(st.integers(1, 10_000), min_size=count, max_size=count, unique=True))
    data = b""
    expected = {}
    for seq, uid in enumerate(sorted(uids), start=1):
        size = draw(st.integers(0, 10**9))
        day, hour = draw(st.integers(1, 28)), draw(st.integers(0, 23))
        date = b'INTERNALDATE "%2d-Feb-2026 %02d:30:00 -0130"' % (day, hour)
        items = draw(st.permutations([b"UID %d" % uid, b"RFC822.SIZE %d" % size, date]))
        data += b"".join(draw(st.lists(NOISE, max_size=2)))
        data += b"* %d FETCH (" % seq + b" ".join(items) + b")\r\n"
        data += b"".join(draw(st.lists(NOISE, max_size=2)))
        received = datetime(2026, 2, day, hour, 30, tzinfo=timezone(timedelta(hours=-1.5)))
        expected[uid] = Listed(uid, size, received)
    return data, expected


FEB_1 = datetime(2026, 2, 1, 0, 30, tzinfo=timezone(timedelta(hours=-1.5)))
# Flags another session changed, told after the message's listing, name its UID.
FLAGS_AFTER = (
    b'* 1 FETCH (UID 4 RFC822.SIZE 7 INTERNALDATE " 1-Feb-2026 00:30:00 -0130")\r\n'
    b"* 1 FETCH (UID 4 FLAGS (\\Seen))\r\n",
    {4: Listed(4, 7, FEB_1)},
)
# A message's items in two responses.
ITEMS_SPLIT = (
    b"* 1 FETCH (UID 4 RFC822.SIZE 7)\r\n"
    b'* 1 FETCH (INTERNALDATE " 1-Feb-2026 00:30:00 -0130" UID 4)\r\n',
    {4: Listed(4, 7, FEB_1)},
)


@settings(PROPERTIES, max_examples=60)
@given(listing=listings(), sizes=sizes_strategy)
@example(listing=FLAGS_AFTER, sizes=[1 << 20])
@example(listing=ITEMS_SPLIT, sizes=[1 << 20])
def test_sizes_and_dates_come_with_their_uid(
    listing: tuple[bytes, dict[int, Listed]], sizes: list[int]
) -> None:
    data, expected = listing

    def answer(line: bytes) -> bytes:
        tag, _, command = line.partition(b" ")
        assert command.endswith(b" (UID RFC822.SIZE INTERNALDATE)")
        return data + tag + b" OK done\r\n"

    got = Wire(Connection(answer, sizes=sizes)).sizes_and_dates(list(expected) or [1])
    assert got == expected


@settings(PROPERTIES, max_examples=60)
@given(
    uids=st.lists(st.integers(1, 2**32 - 1), unique=True, max_size=40),
    lines=st.integers(1, 3),
    modseq=st.booleans(),
    data=st.data(),
)
def test_search_lists_every_uid(
    uids: list[int], lines: int, modseq: bool, data: st.DataObject
) -> None:
    """The UIDs in one SEARCH response or several, with CONDSTORE's ``(MODSEQ n)`` after
    them and other untagged responses between."""
    per_line = -(-len(uids) // lines) or 1
    sent = b""
    for start in range(0, max(len(uids), 1), per_line):
        words = b"".join(b" %d" % uid for uid in uids[start : start + per_line])
        sent += b"".join(data.draw(st.lists(NOISE, max_size=2)))
        sent += b"* SEARCH" + words + (b" (MODSEQ 917162500)" if modseq else b"") + b"\r\n"

    def answer(line: bytes) -> bytes:
        tag, _, command = line.partition(b" ")
        assert command == b"UID SEARCH ALL"
        return sent + tag + b" OK done\r\n"

    assert Wire(Connection(answer, sizes=[7])).search_all() == sorted(uids)


@settings(PROPERTIES, max_examples=100)
@given(st.lists(st.integers(1, 300), max_size=60))
def test_a_uid_set_names_exactly_the_uids(uids: list[int]) -> None:
    named: set[int] = set()
    for part in filter(None, uid_set(uids).split(",")):
        first, _, last = part.partition(":")
        named.update(range(int(first), int(last or first) + 1))
    assert named == set(uids)


@settings(PROPERTIES, max_examples=100)
@given(
    when=st.datetimes(datetime(1970, 1, 2), datetime(2100, 1, 1)),
    minutes=st.integers(-(23 * 60 + 59), 23 * 60 + 59),
)
def test_internaldate_is_the_moment_imaplib_reads(when: datetime, minutes: int) -> None:
    zone = timezone(timedelta(minutes=minutes))
    moment = when.replace(microsecond=0, tzinfo=zone)
    text = imaplib.Time2Internaldate(moment)  # '"DD-Mon-YYYY HH:MM:SS +HHMM"'
    assert internaldate(text.strip('"')) == moment
    standard = imaplib.Internaldate2tuple(b"INTERNALDATE " + text.encode())
    assert standard is not None
    assert time.mktime(standard) == moment.timestamp()


@pytest.mark.parametrize(
    ("search", "sizes", "says"),
    [
        (b"{tag} NO [SERVERBUG] try later\r\n", b"", "UID SEARCH: NO [SERVERBUG] try later"),
        (b"* BYE shutting down\r\n", b"", "* BYE shutting down"),
    ],
    ids=["search-refused", "bye"],
)
def test_a_listing_that_fails_is_a_source_error(search: bytes, sizes: bytes, says: str) -> None:
    def answer(line: bytes) -> bytes:
        tag, _, command = line.partition(b" ")
        script = search if command == b"UID SEARCH ALL" else sizes
        return script.replace(b"{tag}", tag)

    source = ImapSource(
        ImapSettings("scripted", 143, "none", "user", "user", "INBOX", "keep", None),
        lambda: "token",
        "box",
    )
    source.client, source.uidvalidity = SignedIn(Connection(answer)), 7
    with pytest.raises(SourceError, match=r"^box: IMAP scripted:143: listing 'INBOX': ") as caught:
        source.list_items()
    assert says in str(caught.value)


def test_sizes_refused_for_every_message_list_them_without_sizes() -> None:
    """A FETCH of sizes refused (NO/BAD) is narrowed down to each message, refused alone
    too: they are listed without sizes (fetching them tells which fails, if any)."""

    def answer(line: bytes) -> bytes:
        tag, _, command = line.partition(b" ")
        if command == b"UID SEARCH ALL":
            return b"* SEARCH 1 2\r\n" + tag + b" OK done\r\n"
        return tag + b" BAD no\r\n"

    source = ImapSource(
        ImapSettings("scripted", 143, "none", "user", "user", "INBOX", "keep", None),
        lambda: "token",
        "box",
    )
    source.client, source.uidvalidity = SignedIn(Connection(answer)), 7
    assert [(i.source["uid"], i.size) for i in source.list_items()] == [(1, None), (2, None)]


def test_a_listing_whose_session_ends_signs_in_again() -> None:
    """The session ends inside the listing: the source signs in again, and a server that
    is away then is the pass's failure (nothing is charged to a message)."""

    def answer(line: bytes) -> bytes:
        tag, _, command = line.partition(b" ")
        if command == b"UID SEARCH ALL":
            return b"* SEARCH 1 2\r\n" + tag + b" OK done\r\n"
        return b"* 1 FETCH (UID 1"

    source = ImapSource(
        ImapSettings("127.0.0.1", 1, "none", "user", "user", "INBOX", "keep", None, timeout=5),
        lambda: "token",
        "box",
    )
    source.client, source.uidvalidity = Closing(Connection(answer)), 7
    with pytest.raises(NetworkError, match=r"^box: IMAP 127\.0\.0\.1:1: "):
        source.list_items()


GARBAGE = st.lists(
    st.one_of(
        st.sampled_from(
            [
                b"* ",
                b"* 1 FETCH (",
                b"UID 1 ",
                b'INTERNALDATE "',
                b"{tag} ",
                b"OK ",
                b"NO ",
                b"BYE ",
                b"FETCH ",
                b"SEARCH ",
                b"UID ",
                b"BODY[] ",
                b"RFC822.SIZE ",
                b"INTERNALDATE ",
                b'"',
                b"(",
                b")",
                b"{3}\r\n",
                b"\r\n",
                b"1 ",
                b"\xff",
            ]
        ),
        st.binary(max_size=8),
    ),
    max_size=30,
).map(b"".join)


@settings(PROPERTIES, max_examples=150)
@given(garbage=GARBAGE, command=st.sampled_from(["bodies", "sizes_and_dates", "search_all"]))
@example(
    garbage=b'* 1 FETCH (UID 1 INTERNALDATE "\xff4-Nov-2026 09:00:00 +0100")\r\n{tag} OK done\r\n',
    command="sizes_and_dates",
)
def test_whatever_the_server_sends_the_reader_returns_or_raises_imapclients_errors(
    garbage: bytes, command: str
) -> None:
    def answer(line: bytes) -> bytes:
        return garbage.replace(b"{tag}", line.partition(b" ")[0])

    wire = Wire(Connection(answer))
    with contextlib.suppress(IMAPClientError):
        getattr(wire, command)(*([] if command == "search_all" else [[1, 2]]))


LISTED_DATE = b'"17-Jul-1996 02:44:25 -0700"'


def test_a_listing_keeps_items_that_come_apart_and_skips_what_others_caused() -> None:
    """A message's items in two FETCH responses, in either order; a response without a UID
    or with its flags alone (another session's change) tells nothing of a size or date."""
    sent = (
        b"* 1 FETCH (UID 7 RFC822.SIZE 120)\r\n"
        b"* 1 FETCH (UID 7 INTERNALDATE " + LISTED_DATE + b")\r\n"
        b"* 2 FETCH (FLAGS (\\Seen))\r\n"
        b"* 2 FETCH (UID 9 FLAGS (\\Seen))\r\n"
        b"* 3 FETCH (UID 11 INTERNALDATE " + LISTED_DATE + b")\r\n"
        b"* 3 FETCH (UID 11 RFC822.SIZE 80)\r\n"
    )
    wire = Wire(Connection(lambda line: sent + line.split(b" ")[0] + b" OK done\r\n"))
    when = internaldate(LISTED_DATE.decode().strip('"'))
    assert wire.sizes_and_dates([7, 9, 11]) == {
        7: Listed(7, 120, when, None),
        11: Listed(11, 80, when, None),
    }


@pytest.mark.parametrize(
    ("sent", "says"),
    [
        (b"+ go ahead\r\n", re.escape("unexpected response: b'+ go ahead")),
        (b"", "the server closed the connection$"),
    ],
)
def test_a_continuation_or_the_end_of_the_connection_is_abort(sent: bytes, says: str) -> None:
    """A continuation request is nothing this reader asked for; no answer at all is a closed
    connection."""
    wire = Wire(Connection(lambda _line: sent))
    with pytest.raises(imaplib.IMAP4.abort, match=says):
        wire.search_all()
