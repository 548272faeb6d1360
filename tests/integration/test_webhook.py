"""The webhook output against a local receiver that fails the first tries."""

from __future__ import annotations

import base64
import contextlib
import http.server
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mailintake.errors import LeaseLost
from mailintake.sinks.base import Delivery, Receipt
from mailintake.sinks.folder import FolderSink
from mailintake.sinks.webhook import WebhookSink
from tests.support.malformed import malformed


@dataclass
class Receiver:
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


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(http.server.BaseHTTPRequestHandler):
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
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/ingest"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


RAW = (
    b"From: a@example.com\r\nSubject: Claim 7\r\nMessage-ID: <c7@example.com>\r\n"
    b"Content-Type: text/plain\r\n\r\nclaim\r\n"
)


def delivery(key: str = "imap-INBOX-1-7") -> Delivery:
    return Delivery("claims", "imap", key, {"uid": 7}, RAW, None)


def test_retries_until_the_receiver_takes_it(receiver: Receiver) -> None:
    sink = WebhookSink(
        receiver.url, {"Authorization": "Bearer hook-secret"}, backoff=0, sleep=lambda _s: None
    )
    try:
        (result,) = sink.deliver([delivery()])
    finally:
        sink.close()
    assert isinstance(result, Receipt)
    assert receiver.tries == {"claims/imap-INBOX-1-7": 3}
    ((key, body),) = receiver.seen
    assert key == "claims/imap-INBOX-1-7"
    assert base64.b64decode(str(body["message"])) == RAW
    assert body["subject"] == "Claim 7"
    assert receiver.headers[0]["Authorization"] == "Bearer hook-secret"


def test_a_refusal_is_the_reason_and_not_retried(receiver: Receiver) -> None:
    receiver.status_when_failing = 400
    receiver.fail_first = 10
    sink = WebhookSink(receiver.url, backoff=0, sleep=lambda _s: None)
    try:
        (result,) = sink.deliver([delivery()])
    finally:
        sink.close()
    assert isinstance(result, Exception)
    assert "answered HTTP 400" in str(result)
    assert "kept on the server" in str(result)
    assert receiver.tries == {"claims/imap-INBOX-1-7": 1}


def test_gives_up_after_the_attempts_and_says_so(receiver: Receiver) -> None:
    receiver.fail_first = 100
    sink = WebhookSink(receiver.url, attempts=3, backoff=0, sleep=lambda _s: None)
    try:
        (result,) = sink.deliver([delivery()])
    finally:
        sink.close()
    assert isinstance(result, Exception)
    assert "answered HTTP 503" in str(result)
    assert receiver.tries == {"claims/imap-INBOX-1-7": 3}


def test_the_receiver_gets_what_metadata_json_says(receiver: Receiver, tmp_path: Path) -> None:
    """Both outputs describe a message alike, what could not be read (defects) included."""
    receiver.fail_first = 0
    cases = malformed()
    batch = [
        Delivery("claims", "imap", f"imap-INBOX-1-{n}", {"uid": n}, raw, None)
        for n, raw in enumerate(cases.values(), start=1)
    ]
    sink = WebhookSink(receiver.url, backoff=0, sleep=lambda _s: None)
    folder = FolderSink(tmp_path)
    try:
        assert all(isinstance(r, Receipt) for r in sink.deliver(batch))
        written = folder.deliver(batch)
    finally:
        sink.close()
        folder.close()
    received = {key: body for key, body in receiver.seen}
    for delivered, receipt in zip(batch, written, strict=True):
        assert isinstance(receipt, Receipt)
        on_disk = json.loads((Path(receipt.location) / "metadata.json").read_text())
        body = received[f"claims/{delivered.key}"]
        assert body.pop("key") == delivered.key
        assert base64.b64decode(str(body.pop("message"))) == delivered.raw
        for document in (on_disk, body):
            document.pop("imported_at")
            for attachment in document["attachments"]:
                attachment.pop("path", None)
        assert body == on_disk
    assert received[f"claims/{batch[list(cases).index('broken boundary')].key}"]["defects"]


def test_a_paced_webhook_stops_between_messages(receiver: Receiver) -> None:
    """The pass may stop the output before any message (its lease is gone, its output keeps
    failing): the messages after that are not sent and get the pass's reason."""
    receiver.fail_first = 0

    class StopAfterTwo:
        def __init__(self) -> None:
            self.outcomes: list[object] = []
            self.stop = LeaseLost("claims: another poll took over this mailbox")

        def before(self) -> None:
            if len(self.outcomes) == 2:
                raise self.stop

        def after(self, outcome: Receipt | Exception) -> None:
            self.outcomes.append(outcome)

    pacer = StopAfterTwo()
    sink = WebhookSink(receiver.url, backoff=0, sleep=lambda _s: None)
    sink.pace(pacer)
    try:
        results = sink.deliver([delivery(f"imap-INBOX-1-{n}") for n in range(5)])
    finally:
        sink.close()
    assert [isinstance(r, Receipt) for r in results] == [True, True, False, False, False]
    assert results[2:] == [pacer.stop] * 3
    assert sorted(receiver.tries) == ["claims/imap-INBOX-1-0", "claims/imap-INBOX-1-1"]
