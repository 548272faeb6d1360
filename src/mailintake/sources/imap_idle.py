"""An IMAP connection kept in IDLE on one folder (RFC 2177), so that the server says at once
when a message arrives (an untagged ``EXISTS``).

It is opened and signed in like the import's (``ImapSource.open``: TLS, XOAUTH2 or
OAUTHBEARER, the folder opened read-only with EXAMINE), then taken over: its socket is made
non-blocking and a selector loop drives it. ``read`` takes what the server sent and counts
the new-message notices; ``renew`` ends the IDLE command (``DONE``) and, once the server has
answered, issues it again: RFC 2177 §3 asks clients to do so at least every 29 minutes, as
servers may log a client out after 30 minutes of inactivity. ``ended`` says why the
connection is over: the server's ``BYE`` (Exchange Online ends a session whose token
expired with ``BYE Session invalidated - AccessTokenExpired``: then ``token_expired``), a
closed connection, a refusal, or no answer in time. The engine (engine/push.py) decides
what to do about it.

Only one command is ever under way on the connection, so reading needs no more than the
lines the server sends; a literal (``{n}``), which no unsolicited response of IDLE carries,
is skipped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import ssl
import time
from collections.abc import Callable
from typing import Any

from imapclient.exceptions import IMAPClientError

from mailintake.enums import AfterImport
from mailintake.errors import SourceError
from mailintake.sources.base import TokenProvider
from mailintake.sources.imap import ImapSettings, ImapSource
from mailintake.sources.imap_wire import Wire

_EXISTS = re.compile(rb"\* \d+ EXISTS\b", re.IGNORECASE)
_BYE = re.compile(rb"\* BYE\b ?(.*)", re.IGNORECASE)
# Exchange Online's word for a session whose access token expired while it was open
# (``* BYE Session invalidated - AccessTokenExpired``): sign in again with a new token.
_TOKEN_EXPIRED = re.compile(rb"\bAccessTokenExpired\b", re.IGNORECASE)
_LITERAL = re.compile(rb"\{(\d+)\+?\}$")
MAX_LINE = 1 << 16  # an unsolicited response is a short line
_WOULD_BLOCK = (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


class IdleUnsupported(SourceError):
    """The server does not offer IDLE: the mailbox is polled at its interval only."""


# States of the IDLE command on the connection.
STARTING = "starting"  # IDLE sent, the server's continuation awaited
IDLING = "idling"  # the server reports changes
ENDING = "ending"  # DONE sent, the command's tagged answer awaited


class IdleConnection:
    """One mailbox's connection in IDLE. ``open`` blocks (connect, sign in, EXAMINE); the
    rest never blocks: the loop calls ``read`` when ``fileno`` is readable, ``renew`` when
    the IDLE command is due again, and ``overdue`` to find a server that stopped answering.
    """

    def __init__(
        self,
        settings: ImapSettings,
        token: TokenProvider,
        mailbox: str,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # Read-only (EXAMINE): this connection only listens; the import acts on messages.
        quiet = dataclasses.replace(settings, after_import=AfterImport.KEEP, move_to=None)
        self._source = ImapSource(quiet, token, mailbox)
        self.mailbox = mailbox
        self.clock = clock
        self.timeout = settings.timeout  # for each answer of the server
        self.state = STARTING
        self.ended: str | None = None  # why the connection is over (None: it is not)
        self.token_expired = False  # the server ended it because its token expired
        self.answer_by: float | None = None  # when the server must have answered
        self._sock: Any = None
        self._buffer = b""
        self._skip = 0  # bytes of a literal still to skip
        self._count = 0

    def _what(self) -> str:
        s = self._source.settings
        return f"{self.mailbox}: IMAP {s.host}:{s.port} IDLE"

    def open(self) -> None:
        """Connect, sign in, EXAMINE the folder and issue IDLE (its continuation comes
        through ``read``). Raises as ImapSource.open does, or IdleUnsupported."""
        source = self._source
        try:
            source.open()
            if not source.client.has_capability("IDLE"):
                raise IdleUnsupported(f"{self._what()}: the server does not offer IDLE")
            imap = Wire.of(source.client).imap
            imap.sock.setblocking(False)
            # What the server sent after EXAMINE's answer may wait in imaplib's buffer.
            try:
                buffered = imap.file.read1(MAX_LINE) or b""
            except _WOULD_BLOCK:
                buffered = b""
            self.listen(imap.sock, buffered)
        except (OSError, IMAPClientError) as exc:
            self.close()
            raise SourceError(f"{self._what()}: {exc}") from exc
        except BaseException:
            self.close()
            raise

    def listen(self, sock: Any, buffered: bytes = b"") -> None:
        """Go on with ``sock``, signed in with the folder open, without blocking from now
        on (``buffered``: what was read from it already): issue IDLE."""
        sock.setblocking(False)
        self._sock, self._buffer = sock, buffered
        self._idle()

    def fileno(self) -> int:
        return int(self._sock.fileno())

    def _send(self, line: bytes) -> None:
        try:
            self._sock.sendall(line + b"\r\n")
        except (*_WOULD_BLOCK, OSError) as exc:  # a few bytes that do not fit: it is stuck
            self._end(f"cannot send: {exc}")

    def _tag(self) -> bytes:
        return b"I%d" % self._count

    def _idle(self) -> None:
        self._count += 1
        self.state = STARTING
        self.answer_by = self.clock() + self.timeout
        self._send(self._tag() + b" IDLE")

    def renew(self) -> None:
        """End the IDLE command and issue it again once the server has answered."""
        if self.state == IDLING and self.ended is None:
            self.state = ENDING
            self.answer_by = self.clock() + self.timeout
            self._send(b"DONE")

    def overdue(self) -> bool:
        """Whether an answer the server owes is late (then the connection has ended)."""
        if self.ended is None and self.answer_by is not None and self.clock() > self.answer_by:
            self._end(f"no answer within {self.timeout:g} s")
        return self.ended is not None

    def _end(self, why: str) -> None:
        if self.ended is None:
            self.ended = why

    def read(self) -> int:
        """Take what the server sent; the number of new-message notices in it. A connection
        that ended meanwhile says why in ``ended``."""
        chunks: list[bytes] = []
        closed = False
        while self.ended is None:
            try:
                data = self._sock.recv(MAX_LINE)
            except _WOULD_BLOCK:
                break
            except OSError as exc:  # reset, or TLS torn down
                self._end(f"connection lost: {exc}")
                break
            if not data:
                closed = True
                break
            chunks.append(data)
        self._buffer += b"".join(chunks)
        new = self._lines()
        if closed:
            self._end("the server closed the connection")
        return new

    def _lines(self) -> int:
        new = 0
        while self.ended is None:
            if self._skip:
                taken = min(self._skip, len(self._buffer))
                self._buffer, self._skip = self._buffer[taken:], self._skip - taken
                if self._skip:
                    break
            end = self._buffer.find(b"\n")
            if end < 0:
                if len(self._buffer) > MAX_LINE:
                    self._end("a response line too long")
                break
            line, self._buffer = self._buffer[:end].rstrip(b"\r"), self._buffer[end + 1 :]
            literal = _LITERAL.search(line)
            if literal is not None:
                self._skip = int(literal.group(1))
            new += self._line(line)
        return new

    def _line(self, line: bytes) -> int:
        if _EXISTS.match(line):
            return 1
        bye = _BYE.match(line)
        if bye is not None:
            self.token_expired = self.ended is None and bool(_TOKEN_EXPIRED.search(bye.group(1)))
            self._end(f"the server ended the session: {bye.group(1).decode(errors='replace')}")
        elif line.startswith(b"+") and self.state == STARTING:
            self.state, self.answer_by = IDLING, None
        else:
            tag, _, rest = line.partition(b" ")
            status = rest.split(b" ", 1)[0].upper()
            if tag == self._tag() and status == b"OK" and self.state == ENDING:
                self._idle()
            elif tag == self._tag() and status in (b"NO", b"BAD"):
                self._end(f"the server refused IDLE: {rest.decode(errors='replace')[:200]}")
        return 0

    def close(self) -> None:
        """End IDLE and sign out, without waiting for answers; close the connection."""
        if self._sock is not None and self.ended is None:
            done = b"" if self.state == ENDING else b"DONE\r\n"
            with contextlib.suppress(*_WOULD_BLOCK, OSError):
                self._sock.sendall(done + b"L1 LOGOUT\r\n")
        client, self._source.client = self._source.client, None
        with contextlib.suppress(OSError, IMAPClientError):
            if client is not None:
                client.shutdown()
            elif self._sock is not None:
                self._sock.close()
        self._end("closed")


__all__ = ["ENDING", "IDLING", "STARTING", "IdleConnection", "IdleUnsupported"]
