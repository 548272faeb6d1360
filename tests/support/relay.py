"""A TCP relay in front of a real IMAP server that ends the first session once the server has
accepted IDLE, with a line of its own (``ending``): Exchange Online's ``* BYE Session
invalidated - AccessTokenExpired``, which Dovecot never says. Later sessions pass unchanged.
It keeps what each session's client sent, to read the tokens it signed in with."""

from __future__ import annotations

import base64
import binascii
import contextlib
import re
import socket
import threading
from collections.abc import Callable
from types import TracebackType

EXCHANGE_TOKEN_EXPIRED = b"* BYE Session invalidated - AccessTokenExpired\r\n"
_BEARER = re.compile(rb"auth=Bearer ([^\x01]+)\x01")


class EndingRelay:
    def __init__(self, host: str, port: int, ending: bytes = EXCHANGE_TOKEN_EXPIRED) -> None:
        self.upstream = (host, port)
        self.ending = ending
        self.ended = 0  # sessions ended with ``ending``
        self.sent: list[bytearray] = []  # what each session's client sent
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> EndingRelay:
        self._spawn(self._accept)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._listener.close()

    def tokens(self) -> list[str]:
        """The bearer token each session signed in with (XOAUTH2, base64 on the wire)."""
        found: list[str] = []
        with self._lock:
            sessions = [bytes(s) for s in self.sent]
        for sent in sessions:
            for word in re.findall(rb"[A-Za-z0-9+/=]{40,}", sent):
                with contextlib.suppress(binascii.Error, ValueError):
                    bearer = _BEARER.search(base64.b64decode(word, validate=True))
                    if bearer is not None:
                        found.append(bearer.group(1).decode())
        return found

    def _spawn(self, target: Callable[..., object], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:  # closed
                return
            server = socket.create_connection(self.upstream)
            with self._lock:
                self.sent.append(bytearray())
                index = len(self.sent) - 1
            idle = threading.Event()
            self._spawn(self._from_client, client, server, index, idle)
            self._spawn(self._from_server, server, client, index == 0, idle)

    def _from_client(
        self, client: socket.socket, server: socket.socket, index: int, idle: threading.Event
    ) -> None:
        with contextlib.suppress(OSError):
            while data := client.recv(65536):
                with self._lock:
                    self.sent[index] += data
                    if re.search(rb"^\w+ IDLE\r\n", bytes(self.sent[index]), re.MULTILINE):
                        idle.set()
                server.sendall(data)
        with contextlib.suppress(OSError):
            server.shutdown(socket.SHUT_WR)

    def _from_server(
        self, server: socket.socket, client: socket.socket, end: bool, idle: threading.Event
    ) -> None:
        with contextlib.suppress(OSError):
            while data := server.recv(65536):
                client.sendall(data)
                if end and idle.is_set() and re.search(rb"(^|\n)\+", data):
                    client.sendall(self.ending)
                    with self._lock:
                        self.ended += 1
                    break
        for sock in (client, server):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
