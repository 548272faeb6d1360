"""The sandbox's loopback ports: below the kernel's ephemeral range, never one in use, and
processes with different shares never hand out the same port."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from sandbox.ports import Ports, free_port, use_share


def _ephemeral_low() -> int:
    return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])


def test_a_port_is_below_the_ephemeral_range_and_free() -> None:
    port = free_port()
    assert 15000 <= port < _ephemeral_low()
    with socket.create_server(("127.0.0.1", port)):
        pass


def test_shares_do_not_overlap() -> None:
    first, second = Ports(), Ports()
    first.use_share(0, 2)
    second.use_share(1, 2)
    taken_by_first = [first.take() for _ in range(50)]
    taken_by_second = [second.take() for _ in range(50)]
    assert len(set(taken_by_first)) == 50  # none handed out twice
    assert max(taken_by_first) < min(taken_by_second)


def test_a_port_in_use_is_passed_over() -> None:
    shares = (_ephemeral_low() - 15000) // 64  # shares of 64 to 127 ports
    ports = Ports()
    ports.use_share(0, shares)
    size = (_ephemeral_low() - 15000) // shares
    in_use = {ports.take() for _ in range(size // 2)}
    listening = [socket.create_server(("127.0.0.1", port)) for port in in_use]
    try:
        round_after = {ports.take() for _ in range(size)}  # the whole share, once round
    finally:
        for sock in listening:
            sock.close()
    assert round_after
    assert not round_after & in_use


def test_a_share_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="share 2 of 2"):
        use_share(2, 2)
