"""Serving a sandbox stand-in (a Flask app) on 127.0.0.1 in a background thread."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server


class ServedInThread:
    """``start``/``stop``/``serve`` for a class that has ``flask``; ``base_path`` is appended
    to the address in ``base_url`` (Graph serves under ``/v1.0``)."""

    flask: Flask
    base_path = ""
    base_url = ""
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

    @contextmanager
    def serve(self, port: int = 0) -> Iterator[str]:
        url = self.start(port)
        try:
            yield url
        finally:
            self.stop()
