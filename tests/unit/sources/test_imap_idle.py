"""The IDLE connection's side of RFC 2177 over a socket pair, the test playing the server:
new-message notices counted, IDLE issued again after DONE's answer, the ways a connection
ends (Exchange Online's BYE at token expiry, a close, a refusal, silence), partial lines and
literals. The connection's sign-in is ImapSource's (tests/integration/test_push.py runs the
whole of it against Dovecot)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from mailintake.sources.imap import ImapSettings
from mailintake.sources.imap_idle import ENDING, IDLING, STARTING, IdleConnection

SETTINGS = ImapSettings(
    host="127.0.0.1",
    port=143,
    security="none",
    username="a@example.com",
    login_as="a@example.com",
    folder="INBOX",
    after_import="mark_read",
    move_to=None,
    timeout=10.0,
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def pair(clock: Clock) -> Iterator[tuple[IdleConnection, socket.socket]]:
    ours, server = socket.socketpair()
    conn = IdleConnection(SETTINGS, lambda: "token", "box", clock=clock)
    conn.listen(ours)
    server.settimeout(5)
    try:
        yield conn, server
    finally:
        conn.close()
        server.close()


def test_new_messages_are_counted_and_idle_is_issued_again(
    pair: tuple[IdleConnection, socket.socket], clock: Clock
) -> None:
    conn, server = pair
    assert server.recv(100) == b"I1 IDLE\r\n"
    assert (conn.state, conn.answer_by) == (STARTING, 110.0)
    server.sendall(b"+ idling\r\n* 4 EXISTS\r\n* 1 FETCH (FLAGS (\\Seen))\r\n* 5 exists\r\n")
    assert conn.read() == 2
    assert (conn.state, conn.answer_by, conn.ended) == (IDLING, None, None)
    server.sendall(b"* OK Still here\r\n* 3 EXPUNGE\r\n* 2 RECENT\r\n")
    assert conn.read() == 0
    clock.now = 200.0
    conn.renew()
    assert server.recv(100) == b"DONE\r\n"
    assert (conn.state, conn.answer_by) == (ENDING, 210.0)
    server.sendall(b"* 6 EXISTS\r\nI1 OK Idle completed (0.001 + 29.000 secs).\r\n")
    assert conn.read() == 1
    assert server.recv(100) == b"I2 IDLE\r\n"
    server.sendall(b"+ idling\r\n")
    assert conn.read() == 0
    assert conn.state == IDLING
    conn.close()
    assert server.recv(100) == b"DONE\r\nL1 LOGOUT\r\n"
    assert conn.ended == "closed"


def test_exchanges_bye_at_token_expiry_ends_the_connection(
    pair: tuple[IdleConnection, socket.socket],
) -> None:
    conn, server = pair
    server.sendall(b"+ idling\r\n* 7 EXISTS\r\n* BYE Session invalidated - AccessTokenExpired\r\n")
    assert conn.read() == 1
    assert conn.ended == "the server ended the session: Session invalidated - AccessTokenExpired"
    assert conn.token_expired
    assert conn.overdue()


def test_another_bye_is_not_a_token_expiry(pair: tuple[IdleConnection, socket.socket]) -> None:
    conn, server = pair
    server.sendall(b"+ idling\r\n* BYE Server shutting down.\r\n")
    assert conn.read() == 0
    assert conn.ended == "the server ended the session: Server shutting down."
    assert not conn.token_expired


def test_a_connection_closed_by_the_server_ends(
    pair: tuple[IdleConnection, socket.socket],
) -> None:
    conn, server = pair
    assert server.recv(100) == b"I1 IDLE\r\n"  # read: a close with unread data resets
    server.sendall(b"+ idling\r\n* 2 EXISTS\r\n")
    server.close()
    assert conn.read() == 1
    assert conn.ended == "the server closed the connection"


def test_a_refused_idle_ends(pair: tuple[IdleConnection, socket.socket]) -> None:
    conn, server = pair
    server.sendall(b"I1 BAD Command not permitted in this state\r\n")
    assert conn.read() == 0
    assert conn.ended == "the server refused IDLE: BAD Command not permitted in this state"


def test_a_server_that_does_not_answer_in_time_ends(
    pair: tuple[IdleConnection, socket.socket], clock: Clock
) -> None:
    conn, _server = pair
    assert not conn.overdue()
    clock.now = 110.5  # the continuation never came
    assert conn.overdue()
    assert conn.ended == "no answer within 10 s"


def test_partial_lines_and_literals(pair: tuple[IdleConnection, socket.socket]) -> None:
    conn, server = pair
    server.sendall(b"+ idl")
    assert conn.read() == 0
    assert conn.state == STARTING
    server.sendall(b"ing\r\n* 3 EX")
    assert conn.read() == 0
    assert conn.state == IDLING
    server.sendall(b"ISTS\r\n* 1 FETCH (X {12}\r\n* 9 EXISTS\r\n)\r\n* 4 EXISTS\r\n")
    assert conn.read() == 2  # the literal's bytes are no notice
