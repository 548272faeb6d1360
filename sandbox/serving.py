"""Serving a sandbox stand-in on 127.0.0.1 in a background thread: a Flask app (the identity
provider) with werkzeug's server, an ASGI app (the Graph emulator) with uvicorn."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from flask import Flask
from starlette.types import ASGIApp
from werkzeug.serving import BaseWSGIServer, make_server


class _Served:
    """``serve``: ``start``, then ``stop`` when the block ends; ``base_path`` is appended to
    the address in ``base_url`` (Graph serves under ``/v1.0``)."""

    base_path = ""
    base_url = ""

    def start(self, port: int = 0, host: str = "127.0.0.1") -> str:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    @contextmanager
    def serve(self, port: int = 0) -> Iterator[str]:
        url = self.start(port)
        try:
            yield url
        finally:
            self.stop()


class ServedInThread(_Served):
    """``start``/``stop``/``serve`` for a class that has ``flask``."""

    flask: Flask
    _server: BaseWSGIServer | None = None
    _thread: threading.Thread | None = None

    def start(self, port: int = 0, host: str = "127.0.0.1") -> str:
        """Serve in a background thread; returns the base URL."""
        self._server = make_server(host, port, self.flask, threaded=True)
        self.base_url = f"http://{host}:{self._server.server_port}{self.base_path}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


class ServedByUvicorn(_Served):
    """``start``/``stop``/``serve`` for a class that has ``asgi``, served by uvicorn in a
    thread of its own (with its own event loop).

    Connections stay open between requests (HTTP/1.1 keep-alive) for ``keep_alive`` seconds
    of quiet: longer than clients keep an idle connection (httpx: 5 s), so a client never
    sends a request on a connection the server is closing. Requests are not logged."""

    asgi: ASGIApp
    keep_alive = 120
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None

    def start(self, port: int = 0, host: str = "127.0.0.1") -> str:
        """Serve in a background thread; returns the base URL once it answers."""
        listening = _listening(host, port)
        config = uvicorn.Config(
            self.asgi,
            log_config=None,
            log_level="warning",
            access_log=False,
            server_header=False,
            lifespan="off",
            timeout_keep_alive=self.keep_alive,
            timeout_graceful_shutdown=2,  # a request held up by a fault does not hold stop
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [listening]}, daemon=True)
        thread.start()
        while not server.started:
            if not thread.is_alive():
                listening.close()
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.005)
        self._server, self._thread = server, thread
        self.base_url = f"http://{host}:{listening.getsockname()[1]}{self.base_path}"
        return self.base_url

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server, self._thread = None, None

    def abort(self, client: Any) -> bool:
        """Closes the connection from ``client`` (an ASGI scope's ``client``) at once, with
        nothing more written to it; False when there is none. Called on the server's event
        loop."""
        if self._server is None or not client:
            return False
        for connection in list(self._server.server_state.connections):
            if getattr(connection, "client", None) == tuple(client):
                transport: asyncio.Transport = connection.transport
                transport.abort()
                return True
        return False


def _listening(host: str, port: int) -> socket.socket:
    """A TCP socket bound to (host, port), made with the protocol number: asyncio turns
    Nagle's algorithm off (TCP_NODELAY) only on connections whose socket says IPPROTO_TCP,
    and uvicorn writes an answer's head and body separately, so with Nagle on the body would
    wait for the client's delayed ACK of the head (40 ms a request)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listening = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listening.bind((host, port))
    except OSError:
        listening.close()
        raise
    return listening
