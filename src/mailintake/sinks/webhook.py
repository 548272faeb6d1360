"""The webhook output: one HTTP POST per message, ``Idempotency-Key`` = the message key, so a
receiver that sees a repeat keeps one copy; retried with back-off; only a 2xx counts. A
receiver that does not answer or fails on its side (5xx, 408, 429) gives OutputUnavailable,
one that refuses a message (another 4xx) SinkError; the pass may stop it between messages
(``pace``)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx2

from mailintake.errors import MailintakeError, OutputUnavailable, SinkError
from mailintake.net.http import build_client, translate
from mailintake.sinks.base import Delivery, Pacer, Receipt, metadata


class WebhookSink:
    overlapping_batches = 1  # a batch's requests go out one after another, in order

    def __init__(
        self,
        url: str,
        headers: Mapping[str, str] | None = None,
        *,
        attempts: int = 4,
        backoff: float = 1.0,
        client: httpx2.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = url
        self.headers = dict(headers or {})
        self.attempts = attempts
        self.backoff = backoff
        self.client = client or build_client()
        self.sleep = sleep
        self._pacer: Pacer | None = None

    def pace(self, pacer: Pacer | None) -> None:
        self._pacer = pacer

    def _body(self, delivery: Delivery) -> dict[str, object]:
        """The metadata every output gives (as metadata.json), with the message key; each
        attachment's size and digest, not its content."""
        attachments: list[dict[str, Any]] = [
            {"filename": a.filename, "content_type": a.content_type, "size": size, "sha256": digest}
            for a in delivery.parsed.attachments
            for size, digest in [a.measure()]
        ]
        document = metadata(delivery, datetime.now(UTC).isoformat(), attachments)
        return {"key": delivery.key, **document}

    def _content(self, delivery: Delivery) -> tuple[bytes | Iterator[bytes], int]:
        """The JSON document with ``message`` (base64) last, produced piece by piece, so a large
        spooled message is never held in memory; and its length."""
        head = json.dumps(self._body(delivery), ensure_ascii=False)[:-1].encode()
        head += b', "message": "'
        tail = b'"}'
        length = len(head) + 4 * ((delivery.size + 2) // 3) + len(tail)
        raw = delivery.raw
        if isinstance(raw, bytes):
            return head + base64.b64encode(raw) + tail, length

        def pieces() -> Iterator[bytes]:
            yield head
            carry = b""
            for block in raw.chunks(3 << 18):  # a multiple of 3: no padding inside
                block = carry + block
                usable = len(block) - len(block) % 3
                carry = block[usable:]
                yield base64.b64encode(block[:usable])
            yield base64.b64encode(carry)
            yield tail

        return pieces(), length

    def _send(self, delivery: Delivery) -> Receipt | Exception:
        headers = {**self.headers, "Idempotency-Key": f"{delivery.mailbox}/{delivery.key}"}
        last, refused = "", False
        for attempt in range(self.attempts):
            if attempt:
                self.sleep(self.backoff * 2 ** (attempt - 1))
                if self._pacer is not None:
                    self._pacer.before()  # the pass may stop between tries too
            try:
                content, length = self._content(delivery)
                answer = self.client.post(
                    self.url,
                    content=content,
                    headers={
                        **headers,
                        "Content-Type": "application/json",
                        "Content-Length": str(length),
                    },
                )
            except httpx2.HTTPError as exc:
                last = str(translate(exc, f"webhook {self.url}"))
                continue
            if 200 <= answer.status_code < 300:
                return Receipt(delivery.key, f"{self.url}#{delivery.key}")
            last = f"webhook {self.url} answered HTTP {answer.status_code}"
            if answer.status_code < 500 and answer.status_code not in (408, 429):
                refused = True
                break  # the receiver refuses it: retrying the same request will not help
        kind = SinkError if refused else OutputUnavailable
        return kind(f"{last} (message {delivery.key} kept on the server)")

    def deliver(self, batch: Sequence[Delivery]) -> list[Receipt | Exception]:
        results: list[Receipt | Exception] = []
        for delivery in batch:
            try:
                if self._pacer is not None:
                    self._pacer.before()
                outcome = self._send(delivery)
            except MailintakeError as exc:  # the pass stops here: the rest is not sent
                results.extend(exc for _ in range(len(batch) - len(results)))
                break
            if self._pacer is not None:
                self._pacer.after(outcome)
            results.append(outcome)
        return results

    def close(self) -> None:
        self.client.close()
