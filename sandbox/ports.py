"""Loopback ports for servers that must be told their port before they start (Dovecot,
tinyproxy, ``mailintake serve``, uvicorn in a thread).

A port asked of the kernel (bind to port 0) comes from its ephemeral range
(``/proc/sys/net/ipv4/ip_local_port_range``, 32768-60999 by default), the range every outgoing
connection takes its source port from too: between the asking and the server's own bind, one
of the many connections of a busy test run can take it, and the server fails with "Address
already in use". The ports here come from below that range, which outgoing connections never
use. A process may be given a share of it (``use_share``: each pytest-xdist worker its own),
so that two processes never hand out the same port; inside the share, ports are taken in turn
from a random start and checked free before they are handed out.
"""

from __future__ import annotations

import random
import socket
import threading
from pathlib import Path

_LOWEST = 15000
_EPHEMERAL = Path("/proc/sys/net/ipv4/ip_local_port_range")


def _below_ephemeral() -> int:
    """The first port of the kernel's ephemeral range (32768 when it cannot be read)."""
    try:
        return int(_EPHEMERAL.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


class Ports:
    """The ports one process hands out: its share of the range, taken in turn."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._span, self._next = range(0), 0
        self.use_share(0, 1)

    def use_share(self, index: int, shares: int) -> None:
        if not 0 <= index < shares:
            raise ValueError(f"share {index} of {shares}")
        size = (_below_ephemeral() - _LOWEST) // shares
        # A kernel range leaving no room below it (under 16 ports each): the kernel's ports.
        span = (
            range(_LOWEST + index * size, _LOWEST + (index + 1) * size) if size >= 16 else range(0)
        )
        with self._lock:
            self._span, self._next = span, random.choice(span) if span else 0

    def take(self) -> int:
        with self._lock:
            span = self._span
            if not span:
                return _kernel_port()
            for _ in span:
                port = self._next
                self._next = port + 1 if port + 1 < span.stop else span.start
                if _free(port):
                    return port
        raise RuntimeError(f"no free loopback port in {span.start}-{span.stop - 1}")


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _kernel_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


_PORTS = Ports()


def free_port() -> int:
    """A loopback port nothing listens on, below the kernel's ephemeral range; not handed out
    again by this process until its share has gone round."""
    return _PORTS.take()


def use_share(index: int, shares: int) -> None:
    """Hand out ports from share ``index`` (0-based) of ``shares`` equal parts of the range
    only: processes running side by side, each with its own share, never pick the same."""
    _PORTS.use_share(index, shares)
