"""The IMAP commands an import sends in bulk, read with a small purpose-built reader on the
connection IMAPClient opened and signed in (RFC 9051 §7; RFC 3501 §7): ``UID SEARCH``,
``UID FETCH`` of sizes and dates (and Message-IDs), and ``UID FETCH`` of whole messages,
whose literals (``{n}`` then n bytes) are read with one ``read(n)`` each.

Untagged responses the server adds on its own (``EXISTS``, ``EXPUNGE``, a ``FETCH`` of flags
changed by another session) are read and left aside; a tagged ``NO`` or ``BAD`` raises
``imaplib.IMAP4.error`` and a closed connection or ``BYE`` raises ``imaplib.IMAP4.abort``,
the errors IMAPClient raises for its own commands.
"""

from __future__ import annotations

import functools
import imaplib
import itertools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

MAX_LINE = 64 << 20  # one response line (a SEARCH of a million UIDs is about 8 MB)
LITERAL_PIECE = 64 << 20  # a literal up to this size is read with one read()
_LITERAL = re.compile(rb"\{(\d+)\+?\}\r?\n?$")
_FETCH = re.compile(rb"\* \d+ FETCH ", re.IGNORECASE)
_UID = re.compile(rb"[( ]UID (\d+)", re.IGNORECASE)
_SIZE = re.compile(rb"[( ]RFC822\.SIZE (\d+)", re.IGNORECASE)
_DATE = re.compile(rb'[( ]INTERNALDATE "([^"]+)"', re.IGNORECASE)
_BODY_LITERAL = re.compile(rb"[( ]BODY\[\] \{\d+\+?\}\r?\n?$", re.IGNORECASE)
_BODY_QUOTED = re.compile(rb'[( ]BODY\[\] "((?:[^"\\]|\\.)*)"', re.IGNORECASE)
# A tagged or continuation line, or an untagged status: text (RFC 9051 §7.1), no literal.
_STATUS = re.compile(rb"(?!\* )|\* (?:OK|NO|BAD|BYE|PREAUTH)\b", re.IGNORECASE)
_QUOTED = re.compile(rb'"(?:[^"\\]|\\.)*"')
_INTERNALDATE = re.compile(
    r"\s*(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})"
)
_MONTHS = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
        start=1,
    )
}
_TAGS = itertools.count(1)


@dataclass(frozen=True)
class Response:
    """One untagged response: its lines, and after line i (when it announced one) literal i."""

    lines: list[bytes]
    literals: list[bytes]

    @property
    def text(self) -> bytes:
        return b"".join(self.lines)


@dataclass(frozen=True)
class Listed:
    uid: int
    size: int | None
    received: datetime | None
    header: bytes | None = None  # the Message-ID field, when it was asked for


def uid_set(uids: Iterable[int]) -> str:
    """A UID set with runs written as ranges: ``1:3,7,9:12``."""
    ordered = sorted(set(uids))
    parts: list[str] = []
    start = previous = None
    for uid in ordered:
        if previous is not None and uid == previous + 1:
            previous = uid
            continue
        if start is not None:
            parts.append(str(start) if start == previous else f"{start}:{previous}")
        start = previous = uid
    if start is not None:
        parts.append(str(start) if start == previous else f"{start}:{previous}")
    return ",".join(parts)


@functools.lru_cache(maxsize=4096)  # mail arrives in bursts: many messages share a second
def internaldate(text: str) -> datetime | None:
    """``INTERNALDATE`` (``" 4-Nov-2026 09:00:00 +0100"``) as an aware datetime."""
    found = _INTERNALDATE.fullmatch(text)
    if found is None:
        return None
    day, month, year, hour, minute, second, sign, zh, zm = found.groups()
    number = _MONTHS.get(month.lower())
    if number is None:
        return None
    offset = timedelta(hours=int(zh), minutes=int(zm)) * (-1 if sign == "-" else 1)
    try:
        return datetime(
            int(year),
            number,
            int(day),
            int(hour),
            int(minute),
            int(second),
            tzinfo=timezone(offset),
        )
    except ValueError:
        return None


class Wire:
    """Tagged commands and their responses on an imaplib connection (``IMAPClient._imap``)."""

    def __init__(self, imap: Any) -> None:
        self.imap = imap

    @classmethod
    def of(cls, client: Any) -> Wire:
        """The wire under an ``imapclient.IMAPClient``: its imaplib connection, which
        IMAPClient keeps in the private ``_imap`` (the only place mailintake reads it; the
        versions this is tested with are pinned in pyproject.toml, imapclient 4.x)."""
        imap = getattr(client, "_imap", None)
        if imap is None or not hasattr(imap, "send"):
            raise TypeError("this IMAPClient version keeps no imaplib connection in _imap")
        return cls(imap)

    def command(self, text: str) -> list[Response]:
        """Send one command; return its untagged responses once the tagged ``OK`` came."""
        return list(self.responses(text))

    def responses(self, text: str) -> Iterator[Response]:
        """Send one command; its untagged responses as they arrive, then the tagged status
        (``OK`` ends it, ``NO``/``BAD``/``BYE`` raise after what came before it). Read to
        the end: the session is in step only then."""
        tag = f"mi{next(_TAGS)}".encode()
        self.imap.send(tag + b" " + text.encode() + b"\r\n")
        prefix = tag + b" "
        while True:
            lines, literals = self._response()
            first = lines[0]
            if first.startswith(b"* "):
                if first[2:5].upper() == b"BYE":
                    raise imaplib.IMAP4.abort(first.decode(errors="replace").strip())
                yield Response(lines, literals)
            elif first.startswith(prefix):
                status = first[len(prefix) :]
                if status[:2].upper() == b"OK" and status[2:3] in (b" ", b"\r", b"\n"):
                    return
                what = " ".join(text.split(" ", 2)[:2])
                raise imaplib.IMAP4.error(f"{what}: {status.decode(errors='replace').strip()}")
            else:  # a continuation request or a stray line: nothing this reader asked for
                raise imaplib.IMAP4.abort(f"unexpected response: {first[:200]!r}")

    def _line(self) -> bytes:
        line: bytes = self.imap.file.readline(MAX_LINE)
        if not line:
            raise imaplib.IMAP4.abort("the server closed the connection")
        if not line.endswith(b"\n"):
            if len(line) >= MAX_LINE:
                raise imaplib.IMAP4.abort(f"response line over {MAX_LINE} bytes")
            raise imaplib.IMAP4.abort("the server closed the connection inside a response line")
        return line

    def _response(self) -> tuple[list[bytes], list[bytes]]:
        lines = [self._line()]
        literals: list[bytes] = []
        if _STATUS.match(lines[0]):  # text only, whatever it ends with: "see {5}" is text
            return lines, literals
        while (announced := _LITERAL.search(lines[-1])) is not None:
            literals.append(self._literal(int(announced.group(1))))
            lines.append(self._line())
        return lines, literals

    def _literal(self, size: int) -> bytes:
        """``size`` bytes; past ``LITERAL_PIECE`` a piece at a time, so that a size announced
        but not sent (a corrupt or hostile ``{99999999999}``) ends as abort when the
        connection closes, not as MemoryError or OverflowError from one read of that size."""
        file = self.imap.file
        if size <= LITERAL_PIECE:
            data: bytes = file.read(size)
        else:
            pieces: list[bytes] = []
            remaining = size
            while remaining and (piece := file.read(min(remaining, LITERAL_PIECE))):
                pieces.append(piece)
                remaining -= len(piece)
            data = b"".join(pieces)
        if len(data) != size:
            raise imaplib.IMAP4.abort("the server closed the connection inside a literal")
        return data

    def search_all(self) -> list[int]:
        """``UID SEARCH ALL``: every UID of the selected folder."""
        return self.search("ALL")

    def search(self, criteria: str) -> list[int]:
        """``UID SEARCH criteria`` (``ALL``, ``UID 7,12:*``): the UIDs found, in order."""
        uids: list[int] = []
        for response in self.command(f"UID SEARCH {criteria}"):
            text = response.text
            if text[2:8].upper() == b"SEARCH":
                uids.extend(int(word) for word in text[8:].split() if word.isdigit())
        return sorted(uids)

    def sizes_and_dates(
        self,
        uids: Iterable[int],
        into: dict[int, Listed] | None = None,
        *,
        message_ids: bool = False,
    ) -> dict[int, Listed]:
        """``UID FETCH set (UID RFC822.SIZE INTERNALDATE)``, with ``message_ids`` also
        ``BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]`` (``Listed.header``). A message's items may come in
        several FETCH responses, and one that another session caused (``* 3 FETCH (UID 7
        FLAGS (\\Seen))``) may come after them: a response tells only the items it holds.
        What comes is put into ``into`` as it arrives (kept when the command then fails)."""
        found: dict[int, Listed] = {} if into is None else into
        wanted = uid_set(uids)
        if not wanted:
            return found
        items = "UID RFC822.SIZE INTERNALDATE"
        if message_ids:
            items += " BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"
        for response in self.responses(f"UID FETCH {wanted} ({items})"):
            text = response.text
            found_uid = _UID.search(text)
            if not _FETCH.match(text) or found_uid is None:
                continue
            uid = int(found_uid.group(1))
            size = _SIZE.search(text)
            date = _DATE.search(text)
            header = _header_fields(response) if message_ids else None
            if size is None and date is None and header is None:  # flags changed
                continue
            earlier = found.get(uid, Listed(uid, None, None))
            found[uid] = Listed(
                uid,
                int(size.group(1)) if size else earlier.size,
                internaldate(date.group(1).decode("ascii", "replace"))
                if date
                else earlier.received,
                header if header is not None else earlier.header,
            )
        return found

    def bodies(self, uids: Iterable[int], into: dict[int, bytes] | None = None) -> dict[int, bytes]:
        """``UID FETCH set (UID BODY.PEEK[])``: each message's bytes as the server has them,
        put into ``into`` as they arrive (kept when the command then fails)."""
        found: dict[int, bytes] = {} if into is None else into
        wanted = uid_set(uids)
        if not wanted:
            return found
        for response in self.responses(f"UID FETCH {wanted} (UID BODY.PEEK[])"):
            body = _body(response)
            if body is None:
                continue
            uid = _UID.search(_unquoted(b" ".join(response.lines)))
            if uid is not None:
                found[int(uid.group(1))] = body
        return found

    def headline(self, uid: int) -> bytes | None:
        """``UID FETCH uid (UID BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)])``: the message's
        Subject and From fields as the server has them (None if it sent none)."""
        command = f"UID FETCH {uid} (UID BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)])"
        found = None
        for response in self.responses(command):
            if _FETCH.match(response.lines[0]) and response.literals and found is None:
                found = response.literals[0]
        return found


_FIELDS_LITERAL = re.compile(rb"[( ]BODY\[HEADER\.FIELDS \([^)]*\)\] \{\d+\+?\}\r?\n?$", re.I)


def _header_fields(response: Response) -> bytes | None:
    """The ``BODY[HEADER.FIELDS (…)]`` literal of a FETCH response, if it has one."""
    for line, literal in zip(response.lines, response.literals, strict=False):
        if _FIELDS_LITERAL.search(line):
            return literal
    return None


def _unquoted(text: bytes) -> bytes:
    """The text with each quoted string emptied, so that what a string holds (a tiny
    message sent quoted may say ``UID 99``) is never taken for an item of the response."""
    return _QUOTED.sub(b'""', text) if b'"' in text else text


def _body(response: Response) -> bytes | None:
    """The ``BODY[]`` of a FETCH response: a literal (as servers send messages) or, for a
    tiny one, a quoted string; None for other responses (flags another session changed)."""
    if not _FETCH.match(response.lines[0]):
        return None
    for line, literal in zip(response.lines, response.literals, strict=False):
        if _BODY_LITERAL.search(line):
            return literal
    for line in response.lines:
        quoted = _BODY_QUOTED.search(line)
        if quoted is not None:
            return re.sub(rb"\\(.)", rb"\1", quoted.group(1))
    return None
