"""Through a proxy that closes its client's connection after each answer without saying so
(tinyproxy), a request that went out on the closed connection is sent again on a new one."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import httpx2
import pytest

from mailintake.net.http import ProxySettings, build_client


class ClosingProxy:
    """A plain-http proxy on loopback that answers the first request of each connection
    (HTTP/1.1, no ``Connection: close``) and then closes the connection when the next
    request on it arrives, without answering: the moment tinyproxy's close is not yet seen."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.requests: list[str] = []  # request lines, in the order they arrived
        self.connections = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._connection, args=(conn,), daemon=True).start()

    def _connection(self, conn: socket.socket) -> None:
        with conn:
            reader = conn.makefile("rb")
            for answered in range(2):
                line = reader.readline().decode().strip()
                if not line:
                    return
                length = 0
                while header := reader.readline().strip():
                    name, _, value = header.decode().partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                reader.read(length)
                self.requests.append(line)
                if answered:
                    return  # the second request on a connection: closed, no answer
                body = b'{"access_token": "t"}'
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def proxy() -> Iterator[ClosingProxy]:
    server = ClosingProxy()
    yield server
    server.close()


def test_a_request_on_a_connection_the_proxy_closed_is_sent_again(proxy: ClosingProxy) -> None:
    url = "http://login.example/tenant/oauth2/v2.0/token"
    with build_client(proxy=ProxySettings(f"127.0.0.1:{proxy.port}")) as client:
        first = client.post(url, data={"grant_type": "client_credentials"})
        second = client.post(url, data={"grant_type": "client_credentials"})
    assert (first.status_code, second.status_code) == (200, 200)
    assert second.json() == {"access_token": "t"}
    # The second went out on the first connection, was dropped, and went again on a new one.
    assert proxy.requests == [f"POST {url} HTTP/1.1"] * 3
    assert proxy.connections == 2


def test_a_body_that_cannot_be_sent_again_is_not(proxy: ClosingProxy) -> None:
    url = "http://receiver.example/hook"

    def body() -> Iterator[bytes]:
        yield b"once"

    with build_client(proxy=ProxySettings(f"127.0.0.1:{proxy.port}")) as client:
        assert client.post(url, content=b"first").status_code == 200
        with pytest.raises(httpx2.RemoteProtocolError, match="without sending a response"):
            client.post(url, content=body(), headers={"Content-Length": "4"})
    assert len(proxy.requests) == 2
