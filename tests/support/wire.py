"""A scripted mail server on the far end of a connection, for the protocol readers' tests:
what it sends is handed to the reader in chunks of the sizes a test chooses (as a socket
returns whatever has arrived), and it may close the connection after any byte.

``Connection`` stands where a socket's buffered reader stands (``file``, a real
``io.BufferedReader``) and takes the commands sent (``send``/``sendall``); ``answer`` turns
each command line into the bytes the server sends back. ``ScriptedPOP3`` is the standard
library's POP3 client on such a connection; ``SignedIn`` (and ``Closing``) stand where the
IMAP source finds the connection IMAPClient signed in on.
"""

from __future__ import annotations

import io
import poplib
from collections.abc import Callable, Sequence

Answer = Callable[[bytes], bytes]


class ChunkedStream(io.RawIOBase):
    """The server's bytes, at most ``sizes[i]`` at the i-th read (the sizes are used in
    turn), and none after ``limit`` bytes in all: the connection closed."""

    def __init__(self, sizes: Sequence[int] = (1 << 20,), limit: int | None = None) -> None:
        self.pending = bytearray()
        self.sizes = [max(1, size) for size in sizes] or [1 << 20]
        self.reads = 0
        self.limit = limit
        self.sent = 0

    def feed(self, data: bytes) -> None:
        if self.limit is not None:
            data = data[: max(0, self.limit - self.sent)]
        self.sent += len(data)
        self.pending += data

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        size = min(len(buffer), len(self.pending), self.sizes[self.reads % len(self.sizes)])
        self.reads += 1
        buffer[:size] = self.pending[:size]
        del self.pending[:size]
        return size


class Connection:
    """Both ends of a scripted session: ``file`` for the reader, ``send`` for the writer.
    Each command line sent is answered at once (several may come in one write)."""

    def __init__(
        self,
        answer: Answer,
        *,
        greeting: bytes = b"",
        sizes: Sequence[int] = (1 << 20,),
        limit: int | None = None,
    ) -> None:
        self.stream = ChunkedStream(sizes, limit)
        self.stream.feed(greeting)
        self.file = io.BufferedReader(self.stream, buffer_size=8192)
        self.answer = answer
        self.commands: list[bytes] = []
        self.sock = self  # poplib writes with sock.sendall

    def send(self, data: bytes) -> None:
        lines = data.split(b"\r\n")
        assert lines[-1] == b"", f"a command not ended by CRLF: {data!r}"
        for line in lines[:-1]:
            self.commands.append(line)
            self.stream.feed(self.answer(line))

    sendall = send


def split_points(data: bytes) -> list[list[int]]:
    """Chunk sizes that cut ``data`` in two at every byte boundary."""
    return [[cut, len(data)] for cut in range(1, len(data))]


class ScriptedPOP3(poplib.POP3):
    """The standard library's client on a scripted connection."""

    def __init__(self, connection: Connection) -> None:
        self._debugging = 0
        self.host, self.port = "scripted", 110
        self._tls_established = False
        self.sock = connection  # type: ignore[assignment]
        self.file = connection.file
        self.welcome = self._getresp()


class SignedIn:
    """Where the IMAP source finds the connection IMAPClient signed in on."""

    def __init__(self, imap: Connection) -> None:
        self._imap = imap


class Closing(SignedIn):
    """A signed-in connection that can no longer be logged out of (closed under it)."""

    def logout(self) -> None:
        raise OSError("closed")

    def shutdown(self) -> None:
        return None
