"""POP3 commands sent in bulk on the connection poplib opened and signed in: several RETR
(or DELE) outstanding at once when the server advertises PIPELINING (RFC 2449 §6.6), one at
a time otherwise, and their answers read in large blocks.

A multi-line answer (RFC 1939 §3) ends with a line that is only a dot; a line that begins
with a dot has one more dot put in front, taken away here with one ``bytes.replace`` on the
whole message. A message's line ends at LF, whether CR comes before it or not, as poplib
reads lines (and the mail clients that servers are tried with): a server that sends a
message as stored with bare LF line endings (``last line\n.\r\n``) has its answers read
one by one, never run together. The lines the server writes itself, the status line and
the dot line, end in CRLF, or both in a bare LF.
"""

from __future__ import annotations

import poplib
from collections.abc import Generator, Iterator, Sequence
from typing import Any

WINDOW = 64  # commands outstanding at once (a RETR command is a dozen bytes)
BLOCK = 1 << 20
MAX_STATUS = 4096
_END = b"\n.\r\n"  # the last line's line ending, then the dot line
_END_LF = b"\n.\n"  # the same from a server that ends its own lines with a bare LF


class Pipe:
    """Reads answers from a poplib connection's buffered reader."""

    def __init__(self, client: poplib.POP3, *, pipelining: bool) -> None:
        self.client = client
        self.window = WINDOW if pipelining else 1
        self.buffer = bytearray()
        self.pos = 0  # where the unread part of the buffer starts
        self.end = _END  # how the answer being read ends

    def _fill(self) -> None:
        file: Any = getattr(self.client, "file")  # noqa: B009 - poplib's reader, untyped
        block: bytes = file.read1(BLOCK)
        if not block:
            raise poplib.error_proto("-ERR the server closed the connection")
        if self.pos:
            del self.buffer[: self.pos]
            self.pos = 0
        self.buffer += block

    def _status(self) -> bytes:
        """The next answer's first line, without its line ending. A server that ends it
        with a bare LF ends its dot line so too: that is the end the answer's lines are
        read up to."""
        while (end := self.buffer.find(b"\n", self.pos)) < 0:
            if len(self.buffer) - self.pos > MAX_STATUS:
                raise poplib.error_proto("-ERR answer line too long")
            self._fill()
        crlf = end > self.pos and self.buffer[end - 1] == 0x0D
        line = bytes(self.buffer[self.pos : end - 1 if crlf else end])
        self.pos = end + 1
        self.end = _END if crlf else _END_LF
        return line

    def _lines(self) -> bytes:
        """The rest of a multi-line answer, dot-unstuffed, with the line ending (CRLF or LF)
        of its last line (an empty answer is ``b""``)."""
        marker = self.end
        while len(self.buffer) - self.pos < len(marker) - 1:
            self._fill()
        if self.buffer.startswith(marker[1:], self.pos):
            self.pos += len(marker) - 1
            return b""
        # The first line is not the end, so the end marker (the last line's LF, the dot
        # line) lies after it; ``offset`` is how far past ``pos`` it was looked for already.
        offset = 0
        while (end := self.buffer.find(marker, self.pos + offset)) < 0:
            offset = max(0, len(self.buffer) - self.pos - len(marker) + 1)
            self._fill()
        with memoryview(self.buffer) as view:  # one copy, not two
            data = bytes(view[self.pos : end + 1])
        self.pos = end + len(marker)
        if b"\n.." in data:
            data = data.replace(b"\n..", b"\n.")
        if data[:2] == b"..":
            data = data[1:]
        return data

    def _send(self, commands: Sequence[str]) -> None:
        sock: Any = getattr(self.client, "sock")  # noqa: B009
        sock.sendall("".join(f"{c}\r\n" for c in commands).encode())

    def _run(
        self, commands: Sequence[str], multiline: bool, alone: bool = False
    ) -> Iterator[tuple[int, bytes | poplib.error_proto]]:
        """Each command's index and answer (the message for a multi-line one, the status
        line otherwise), in order; ``-ERR`` raises ``poplib.error_proto``, or with ``alone``
        is that command's answer (the session stays in step: an -ERR is one line)."""
        sent = done = 0
        try:
            while done < len(commands):
                if sent < len(commands) and sent - done <= self.window // 2:
                    batch = commands[sent : done + self.window]
                    self._send(batch)
                    sent += len(batch)
                status = self._status()
                done += 1
                if not status.startswith(b"+OK") and alone:
                    yield done - 1, poplib.error_proto(status)
                    continue
                if not status.startswith(b"+OK"):
                    self._drain(sent - done, multiline)
                    raise poplib.error_proto(status)
                yield done - 1, self._lines() if multiline else status
        except GeneratorExit:  # the caller stopped early: read what is still due
            self._drain(sent - done, multiline)
            raise

    def _drain(self, pending: int, multiline: bool) -> None:
        """Read the answers still due, so the session stays in step."""
        for _ in range(pending):
            if self._status().startswith(b"+OK") and multiline:
                self._lines()

    def retrieve(self, numbers: Sequence[int]) -> Generator[tuple[int, bytes], None, None]:
        """``RETR`` each message number: (number, the message's bytes)."""
        for index, message in self._run([f"RETR {n}" for n in numbers], multiline=True):
            assert isinstance(message, bytes)  # an -ERR raised
            yield numbers[index], message

    def retrieve_each(
        self, numbers: Sequence[int]
    ) -> Generator[tuple[int, bytes | poplib.error_proto], None, None]:
        """``retrieve``, where a RETR answered ``-ERR`` is that message's answer (the error)
        and the others go on."""
        for index, message in self._run([f"RETR {n}" for n in numbers], True, alone=True):
            yield numbers[index], message

    def top(self, number: int) -> bytes | poplib.error_proto:
        """``TOP number 0`` (RFC 1939 §7, optional): the message's header block, or the
        -ERR of a server that cannot give it or has no TOP."""
        for _index, answer in self._run([f"TOP {number} 0"], True, alone=True):
            return answer
        raise poplib.error_proto("-ERR no answer")  # pragma: no cover - one command, one answer

    def answer(self, command: str) -> bytes:
        """A listing's multi-line answer (``UIDL``, ``LIST``: RFC 1939 §5, §7), its lines
        with their line endings, read in blocks, not a line at a time: its cost is the whole
        mailbox's each poll."""
        for _index, answer in self._run([command], multiline=True):
            assert isinstance(answer, bytes)  # an -ERR raised
            return answer
        raise poplib.error_proto("-ERR no answer")  # pragma: no cover - one command, one answer

    def listing(self, command: str) -> list[bytes]:
        """The lines of a listing's answer."""
        return self.answer(command).splitlines()

    def delete(self, numbers: Sequence[int]) -> None:
        """``DELE`` each message number (the deletions take effect at QUIT)."""
        for _ in self._run([f"DELE {n}" for n in numbers], multiline=False):
            pass


def pipelining(client: poplib.POP3) -> bool:
    """Whether the server advertises PIPELINING in its CAPA answer (RFC 2449)."""
    try:
        return "PIPELINING" in client.capa()
    except poplib.error_proto:
        return False
