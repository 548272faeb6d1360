"""The webhook output against a local receiver that fails the first tries."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from mailintake.errors import LeaseLost
from mailintake.sinks.base import Delivery, Receipt
from mailintake.sinks.folder import FolderSink
from mailintake.sinks.webhook import WebhookSink
from tests.support.http_receiver import WebhookReceiver
from tests.support.malformed import malformed

RAW = (
    b"From: a@example.com\r\nSubject: Claim 7\r\nMessage-ID: <c7@example.com>\r\n"
    b"Content-Type: text/plain\r\n\r\nclaim\r\n"
)


def delivery(key: str = "imap-INBOX-1-7") -> Delivery:
    return Delivery("claims", "imap", key, {"uid": 7}, RAW, None)


def test_retries_until_the_receiver_takes_it(receiver: WebhookReceiver) -> None:
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


def test_a_refusal_is_the_reason_and_not_retried(receiver: WebhookReceiver) -> None:
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


def test_gives_up_after_the_attempts_and_says_so(receiver: WebhookReceiver) -> None:
    receiver.fail_first = 100
    sink = WebhookSink(receiver.url, attempts=3, backoff=0, sleep=lambda _s: None)
    try:
        (result,) = sink.deliver([delivery()])
    finally:
        sink.close()
    assert isinstance(result, Exception)
    assert "answered HTTP 503" in str(result)
    assert receiver.tries == {"claims/imap-INBOX-1-7": 3}


def test_the_receiver_gets_what_metadata_json_says(
    receiver: WebhookReceiver, tmp_path: Path
) -> None:
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


def test_a_paced_webhook_stops_between_messages(receiver: WebhookReceiver) -> None:
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
