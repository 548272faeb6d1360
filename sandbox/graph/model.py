"""What the emulated Exchange Online store holds: mailboxes, their folders and messages.

Ids follow Graph's rules (concepts/outlook-immutable-id.md): every message has an immutable id
that survives moves inside the mailbox, and a "regular" (REST) id that changes whenever the
message is moved; folder ids never change. Ids are URL-safe base64 with padding, like
Graph's ("AAMkAG...AAA="), and case-sensitive.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sandbox.graph.journal import Journal, SyncStates
from sandbox.graph.mime import Summary

ROOT = "msgfolderroot"
# Well-known folder names (resources/mailfolder.md, "Use well-known folder names"); the ones a
# mailbox starts with, and their English display names.
STANDARD_FOLDERS = {
    "inbox": "Inbox",
    "archive": "Archive",
    "deleteditems": "Deleted Items",
    "drafts": "Drafts",
    "junkemail": "Junk Email",
    "outbox": "Outbox",
    "sentitems": "Sent Items",
    "conversationhistory": "Conversation History",
}
HIDDEN_FOLDERS = {"recoverableitemsdeletions": "Deletions"}
WELL_KNOWN = frozenset({ROOT, *STANDARD_FOLDERS, *HIDDEN_FOLDERS})
_ID = re.compile(r"^AA[A-Za-z0-9_-]+={0,2}$")


def new_id(prefix: str, seed: bytes | None = None) -> str:
    body = seed if seed is not None else os.urandom(50)
    return prefix + base64.urlsafe_b64encode(body).decode()


def looks_like_id(text: str) -> bool:
    """Well formed (URL-safe base64 in Graph's shape) as opposed to merely unknown: Graph
    answers the first case with 404 ErrorItemNotFound, the second with 400
    ErrorInvalidIdMalformed."""
    return len(text) >= 16 and _ID.match(text) is not None


def regular_id(immutable_id: str, folder_id: str) -> str:
    """A message's regular id in a folder: derived from the immutable id and the folder, it
    changes on every move."""
    digest = hashlib.sha256(f"{immutable_id}|{folder_id}".encode()).digest()
    return new_id("AAMkAG", digest + digest[:18])


@dataclass
class Folder:
    id: str
    display_name: str
    parent_id: str | None
    well_known: str | None = None
    hidden: bool = False


@dataclass
class Message:
    immutable_id: str
    raw: bytes
    folder_id: str
    is_read: bool
    received: datetime
    summary: Summary
    seq: int
    created: datetime
    modified: datetime
    version: int = 1
    categories: list[str] = field(default_factory=list)
    flag: dict[str, object] = field(default_factory=lambda: {"flagStatus": "notFlagged"})
    inference: str = "focused"

    @property
    def regular_id(self) -> str:
        return regular_id(self.immutable_id, self.folder_id)

    @property
    def change_key(self) -> str:
        return base64.b64encode(
            hashlib.sha256(f"{self.immutable_id}:{self.version}".encode()).digest()[:21]
        ).decode()

    def touch(self) -> None:
        self.version += 1
        self.modified = datetime.now(UTC)


@dataclass
class Mailbox:
    address: str
    display_name: str
    object_id: str
    delegates: set[str]
    # Delegates whose rights are read-only (Reviewer): any change answers 403.
    read_only: set[str] = field(default_factory=set)
    # Delegates with mailbox access but no rights on its folders: 404 ErrorFolderNotFound.
    no_folder_rights: set[str] = field(default_factory=set)
    folders: dict[str, Folder] = field(default_factory=dict)
    messages: dict[str, Message] = field(default_factory=dict)  # immutable id -> message
    regular: dict[str, str] = field(default_factory=dict)  # regular id -> immutable id
    journal: Journal = field(default_factory=Journal)  # every change, for delta queries

    def folder(self, key: str) -> Folder | None:
        """A folder by id or well-known name (case-insensitive)."""
        found = self.folders.get(key)
        if found is not None:
            return found
        lowered = key.lower()
        return next((f for f in self.folders.values() if f.well_known == lowered), None)

    def root(self) -> Folder:
        found = self.folder(ROOT)
        assert found is not None
        return found

    def children(self, parent: Folder, *, hidden: bool = False) -> list[Folder]:
        return [
            f
            for f in self.folders.values()
            if f.parent_id == parent.id and (hidden or not f.hidden)
        ]

    def message(self, key: str) -> Message | None:
        """A message by its immutable or its current regular id."""
        found = self.messages.get(key)
        if found is None and key in self.regular:
            found = self.messages.get(self.regular[key])
        return found

    def in_folder(self, folder: Folder) -> list[Message]:
        return [m for m in self.messages.values() if m.folder_id == folder.id]

    def place(self, message: Message, folder: Folder) -> None:
        self.regular.pop(message.regular_id, None)
        before, message.folder_id = message.folder_id, folder.id
        self.regular[message.regular_id] = message.immutable_id
        self.journal.note(message.immutable_id, before)

    def remove(self, message: Message) -> None:
        self.regular.pop(message.regular_id, None)
        self.messages.pop(message.immutable_id, None)
        self.journal.note(message.immutable_id, message.folder_id)

    def changed(self, message: Message) -> None:
        """A message changed where it is (read, flagged…): a delta query gives it again."""
        message.touch()
        self.journal.note(message.immutable_id, message.folder_id)

    def name_of(self, folder_id: str) -> str:
        folder = self.folders[folder_id]
        return folder.well_known or folder.display_name


class Store:
    """All mailboxes; every access goes through ``lock`` (the server is threaded)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.mailboxes: dict[str, Mailbox] = {}  # lower-cased address -> mailbox
        self._seq = 0
        self.sync_states = SyncStates()  # the delta token cache (sandbox.graph.journal)
        self._last_received = datetime.now(UTC) - timedelta(days=1)

    def add_mailbox(
        self, address: str, delegates: set[str] | None = None, display_name: str | None = None
    ) -> Mailbox:
        with self.lock:
            object_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"mailbox:{address.lower()}"))
            box = Mailbox(
                address=address,
                display_name=display_name or address.split("@")[0].title(),
                object_id=object_id,
                delegates={d.lower() for d in delegates or set()},
            )
            root = Folder(new_id("AAMkAG"), "Top of Information Store", None, ROOT)
            box.folders[root.id] = root
            for name, display in STANDARD_FOLDERS.items():
                folder = Folder(new_id("AAMkAG"), display, root.id, name)
                box.folders[folder.id] = folder
            for name, display in HIDDEN_FOLDERS.items():
                # Recoverable Items lives outside the IPM subtree: never under msgfolderroot.
                folder = Folder(new_id("AAMkAG"), display, None, name, hidden=True)
                box.folders[folder.id] = folder
            self.mailboxes[address.lower()] = box
            return box

    def mailbox(self, key: str) -> Mailbox | None:
        """By user principal name (case-insensitive) or object id."""
        with self.lock:
            found = self.mailboxes.get(key.lower())
            if found is None:
                found = next(
                    (b for b in self.mailboxes.values() if b.object_id == key.lower()), None
                )
            return found

    def add_folder(self, box: Mailbox, display_name: str, parent: Folder) -> Folder:
        with self.lock:
            folder = Folder(new_id("AAMkAG"), display_name, parent.id)
            box.folders[folder.id] = folder
            return folder

    def deliver(
        self,
        box: Mailbox,
        raw: bytes,
        folder: Folder,
        *,
        is_read: bool = False,
        received: datetime | None = None,
    ) -> Message:
        with self.lock:
            self._seq += 1
            if received is None:
                # Strictly increasing, whole seconds (Graph's receivedDateTime precision).
                now = datetime.now(UTC).replace(microsecond=0)
                received = max(now, self._last_received + timedelta(seconds=1))
                self._last_received = received
            now = datetime.now(UTC)
            message = Message(
                immutable_id=new_id("AAkALg"),
                raw=raw,
                folder_id=folder.id,
                is_read=is_read,
                received=received,
                summary=Summary(raw),
                seq=self._seq,
                created=now,
                modified=now,
            )
            box.messages[message.immutable_id] = message
            box.regular[message.regular_id] = message.immutable_id
            box.journal.note(message.immutable_id, None)
            return message
