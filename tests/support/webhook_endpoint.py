"""A real HTTP endpoint for Graph's webhooks (http.server, threaded, on a free loopback port):
it answers the validation handshake (``?validationToken=`` → 200 text/plain with the token,
or what ``validation`` says instead) and keeps every notification body it receives."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Endpoint:
    url: str
    notifications: list[dict[str, Any]] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)  # validation tokens received, decoded
    validation: str = "echo"  # "echo", "wrong" (another body), "refuse" (403)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.notifications) >= count:
                    return list(self.notifications)
            time.sleep(0.02)
        raise AssertionError(f"{count} notifications expected, {len(self.notifications)} came")


@contextmanager
def webhook_endpoint() -> Iterator[Endpoint]:
    endpoint = Endpoint(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            query = parse_qs(urlsplit(self.path).query)
            if "validationToken" in query:
                token = query["validationToken"][0]
                with endpoint.lock:
                    endpoint.tokens.append(token)
                self._validation(token)
                return
            with endpoint.lock:
                endpoint.notifications.append(json.loads(raw))
            self._answer(202, b"", "text/plain")

        def _validation(self, token: str) -> None:
            if endpoint.validation == "refuse":
                self._answer(403, b"", "text/plain")
            elif endpoint.validation == "wrong":
                self._answer(200, b"not the token", "text/plain")
            else:
                self._answer(200, token.encode(), "text/plain; charset=utf-8")

        def _answer(self, status: int, body: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    endpoint.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield endpoint
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
