"""Each output as the contract suite (tests/contract) drives it: the output itself (a new one
for each call, as after a restart), and what the place it delivers to holds.

To add an output to the contract suite, write a class with these members and add it to
``OUTPUTS`` in tests/contract/conftest.py:

- ``name``: how the tests' ids name it;
- ``sink()``: a new MessageSink delivering to the case's place;
- ``copies(delivery)``: how many copies of that message the place holds;
- ``held(delivery)``: the bytes of the message the place holds for it.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Protocol

from mailintake.sinks.base import Delivery, MessageSink
from mailintake.sinks.folder import FolderSink
from mailintake.sinks.webhook import WebhookSink
from tests.support.http_receiver import WebhookReceiver


class OutputCase(Protocol):
    name: str

    def sink(self) -> MessageSink: ...

    def copies(self, delivery: Delivery) -> int: ...

    def held(self, delivery: Delivery) -> bytes: ...


class FolderCase:
    """The folder output (CONTRACT §5's layout) in a folder of the test's own."""

    name = "folder"

    def __init__(self, root: Path) -> None:
        self.root = root

    def sink(self) -> MessageSink:
        return FolderSink(self.root)

    def _folders(self, delivery: Delivery) -> list[Path]:
        return [p for p in self.root.glob(f"{delivery.mailbox}/*/{delivery.key}") if p.is_dir()]

    def copies(self, delivery: Delivery) -> int:
        return len(self._folders(delivery))

    def held(self, delivery: Delivery) -> bytes:
        (folder,) = self._folders(delivery)
        return (folder / "message.eml").read_bytes()


class WebhookCase:
    """The webhook output against a real HTTP receiver that keeps one copy per
    Idempotency-Key, as the contract asks of a receiver."""

    name = "webhook"

    def __init__(self, receiver: WebhookReceiver) -> None:
        self.receiver = receiver
        receiver.fail_first = 0

    def sink(self) -> MessageSink:
        return WebhookSink(self.receiver.url, backoff=0, sleep=lambda _s: None)

    @staticmethod
    def _key(delivery: Delivery) -> str:
        return f"{delivery.mailbox}/{delivery.key}"

    def copies(self, delivery: Delivery) -> int:
        return int(self._key(delivery) in self.receiver.kept())

    def held(self, delivery: Delivery) -> bytes:
        return base64.b64decode(str(self.receiver.kept()[self._key(delivery)]["message"]))
