"""Real HTTP servers for tests (http.server, threaded, on a free loopback port) that keep what
they receive:

- ``http_receiver`` (alerts): every POST, its path, headers and JSON body; ``fail_with``
  makes it answer that status instead (a receiver that is down on its side);
- ``webhook_receiver`` (the webhook output; the ``receiver`` fixture of
  tests/integration/conftest.py): what a webhook receiver of the contract does, one copy per
  ``Idempotency-Key``, after refusing the first ``fail_first`` tries of each, and hanging
  (answering late) while ``hang`` is set.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """``handler`` served on a free loopback port: yields ``http://127.0.0.1:PORT``."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class _Quiet(BaseHTTPRequestHandler):
    def answer(self, status: int) -> None:
        """``status`` with an empty body."""
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Receiver:
    url: str
    requests: list[Request] = field(default_factory=list)
    fail_with: int | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


@contextmanager
def http_receiver(path: str = "/alerts") -> Iterator[Receiver]:
    receiver = Receiver(url="")

    class Handler(_Quiet):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            status = receiver.fail_with or 200
            if status < 300:
                with receiver.lock:
                    receiver.requests.append(
                        Request(self.path, dict(self.headers.items()), json.loads(raw))
                    )
            self.answer(status)

    with serving(Handler) as base:
        receiver.url = f"{base}{path}"
        yield receiver


@dataclass
class WebhookReceiver:
    url: str = ""
    fail_first: int = 2
    status_when_failing: int = 503
    # While set, a request waits this long before its answer (a 504): longer than the
    # sender waits, it hangs for the sender. ``hangs`` says which keys (all when None).
    hang: float = 0.0
    hangs: Callable[[str], bool] | None = None
    seen: list[tuple[str, dict[str, object]]] = field(default_factory=list)
    tries: dict[str, int] = field(default_factory=dict)
    headers: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def hanging(self, key: str) -> bool:
        return self.hang > 0 and (self.hangs is None or self.hangs(key))

    def kept(self) -> dict[str, dict[str, object]]:
        """What a receiver keeping one copy per Idempotency-Key holds, by key."""
        with self.lock:
            return dict(self.seen)


@contextmanager
def webhook_receiver(path: str = "/ingest") -> Iterator[WebhookReceiver]:
    state = WebhookReceiver()

    class Handler(_Quiet):
        def do_POST(self) -> None:
            key = self.headers.get("Idempotency-Key", "")
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with state.lock:
                state.tries[key] = state.tries.get(key, 0) + 1
                state.headers.append(dict(self.headers))
                status = 200
                if state.hanging(key):
                    status = 504
                elif state.tries[key] <= state.fail_first:
                    status = state.status_when_failing
                else:
                    state.seen.append((key, body))
            if status == 504:
                time.sleep(state.hang)
            with contextlib.suppress(OSError):  # a sender that gave up has gone
                self.answer(status)

    with serving(Handler) as base:
        state.url = f"{base}{path}"
        yield state
