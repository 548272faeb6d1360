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
        self._low, self._high = _LOWEST, _below_ephemeral()
        self._next = random.randrange(self._low, self._high) if self._high > self._low else 0

    def use_share(self, index: int, shares: int) -> None:
        high = _below_ephemeral()
        size = (high - _LOWEST) // shares
        if size < 16:
            return  # a kernel range leaving no room below it: the kernel's own ports
        with self._lock:
            self._low = _LOWEST + index * size
            self._high = self._low + size
            self._next = random.randrange(self._low, self._high)

    def take(self) -> int:
        with self._lock:
            if self._high - self._low < 16:
                return _kernel_port()
            for _ in range(self._high - self._low):
                port = self._next
                self._next = port + 1 if port + 1 < self._high else self._low
                if _free(port):
                    return port
        raise RuntimeError(f"no free loopback port in {self._low}-{self._high - 1}")


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
    if not 0 <= index < shares:
        raise ValueError(f"share {index} of {shares}")
    _PORTS.use_share(index, shares)
