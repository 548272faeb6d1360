"""Each source as the contract suite (tests/contract) drives it: a mailbox of its own on its
server, messages put in it as the server's own delivery would, the source over it (not yet
opened) with an after-import action, and what became of a message on the server.

To add a source to the contract suite, write a class with these members and add it to
``SOURCES`` in tests/contract/conftest.py (its fixture makes one per test):

- ``name``: how the tests' ids name it;
- ``actions``: the after-import actions it offers (``AfterImport`` values);
- ``deliver(raws)``: put these messages in the mailbox's folder, in order;
- ``source(after_import)``: the MailSource over that folder (``move`` moves to ``MOVE_TO``);
- ``state(raw)``: what the server shows of that message now, one of ``STATES``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from mailintake.enums import AfterImport
from mailintake.sources.base import MailSource
from mailintake.sources.graph import GraphSettings, GraphSource
from mailintake.sources.memory import MemoryMailbox, MemorySource
from sandbox.graph import GraphEmulator
from sandbox.idp import IdentityProvider
from tests.support.dovecot import MailServer
from tests.support.graph import app_token
from tests.support.mail import imap_source, pop3_source

MOVE_TO = "Processed"  # the folder of the ``move`` action, made with each mailbox
# What a message is on the server: in the folder and not read (POP3: in the mailbox), in it
# and read, moved to MOVE_TO, or no longer in the mailbox (deleted; Graph: Deleted Items).
STATES = ("unread", "read", "moved", "gone")
# What acknowledging a message does to it, by after-import action.
AFTER_ACKNOWLEDGE = {
    AfterImport.KEEP: "unread",
    AfterImport.MARK_READ: "read",
    AfterImport.MOVE: "moved",
    AfterImport.DELETE: "gone",
}
ALL_ACTIONS = tuple(AfterImport)


class SourceCase(Protocol):
    name: str
    actions: tuple[AfterImport, ...]

    def deliver(self, raws: Sequence[bytes]) -> None: ...

    def source(self, after_import: AfterImport = AfterImport.KEEP) -> MailSource: ...

    def state(self, raw: bytes) -> str: ...


def _move_to(after_import: AfterImport) -> str | None:
    return MOVE_TO if after_import is AfterImport.MOVE else None


class MemoryCase:
    """mailintake.sources.memory."""

    name = "memory"
    actions = ALL_ACTIONS

    def __init__(self) -> None:
        self.box = MemoryMailbox()

    def deliver(self, raws: Sequence[bytes]) -> None:
        for raw in raws:
            self.box.add(raw)

    def source(self, after_import: AfterImport = AfterImport.KEEP) -> MailSource:
        return MemorySource(self.box, after_import, _move_to(after_import))

    def state(self, raw: bytes) -> str:
        for uid, held in self.box.messages.items():
            if held == raw:
                return "read" if uid in self.box.seen else "unread"
        if any(raw in folder.values() for folder in self.box.moved.values()):
            return "moved"
        return "gone"


class DovecotCase:
    """A mailbox of its own on the shared Dovecot, read with a user's token."""

    def __init__(self, server: MailServer) -> None:
        self.server = server
        self.dovecot = server.dovecot
        self.user = server.fresh_user("contract")
        self.dovecot.create_folder(self.user, MOVE_TO)

    def deliver(self, raws: Sequence[bytes]) -> None:
        self.dovecot.deliver_many(self.user, raws)

    def state(self, raw: bytes) -> str:
        held = zip(self.dovecot.messages(self.user), self.dovecot.flags(self.user), strict=True)
        for message, flags in held:
            if message == raw and "\\Deleted" not in flags:
                return "read" if "\\Seen" in flags else "unread"
        if raw in self.dovecot.messages(self.user, MOVE_TO):
            return "moved"
        return "gone"


class ImapCase(DovecotCase):
    name = "imap"
    actions = ALL_ACTIONS

    def source(self, after_import: AfterImport = AfterImport.KEEP) -> MailSource:
        return imap_source(self.server, self.user, after_import, move_to=_move_to(after_import))


class Pop3Case(DovecotCase):
    name = "pop3"
    actions = (AfterImport.KEEP, AfterImport.DELETE)

    def source(self, after_import: AfterImport = AfterImport.KEEP) -> MailSource:
        return pop3_source(self.server, self.user, after_import)

    def state(self, raw: bytes) -> str:
        found = super().state(raw)  # POP3 knows no "read": RETR may set \Seen on its own
        return "unread" if found == "read" else found


class GraphCase:
    """A mailbox of its own on the module's Graph emulator, read with an application token."""

    name = "graph"
    actions = ALL_ACTIONS

    def __init__(self, emulator: GraphEmulator, idp: IdentityProvider, address: str) -> None:
        self.graph = emulator
        self.address = address
        emulator.add_mailbox(address)
        emulator.add_folder(address, MOVE_TO)
        self.token = app_token(idp)

    def deliver(self, raws: Sequence[bytes]) -> None:
        for raw in raws:
            self.graph.deliver(self.address, raw)

    def source(self, after_import: AfterImport = AfterImport.KEEP) -> MailSource:
        settings = GraphSettings(
            self.graph.base_url,
            self.address,
            "inbox",
            after_import,
            _move_to(after_import),
            attempts=3,
            backoff=0.01,
        )
        return GraphSource(settings, lambda: self.token, "box")

    def state(self, raw: bytes) -> str:
        for message in self.graph.messages(self.address, None):
            if message["raw"] != raw:
                continue
            if message["folder"] == "inbox":
                return "read" if message["isRead"] else "unread"
            if message["folder"] == MOVE_TO:
                return "moved"
        return "gone"
