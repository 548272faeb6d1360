"""GraphEmulator: the Python face of the emulator (mailboxes, delivery, inspection, fault
injection, statistics), served by uvicorn on 127.0.0.1 (sandbox.serving)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sandbox.graph.auth import GRAPH
from sandbox.graph.errors import mailbox_concurrency
from sandbox.graph.faults import Faults
from sandbox.graph.model import ROOT, Folder, Mailbox, Store
from sandbox.graph.routes import build_app
from sandbox.graph.subscriptions import Subscriptions
from sandbox.idp import IdentityProvider
from sandbox.serving import ServedByUvicorn


class GraphEmulator(ServedByUvicorn):
    """A stand-in for https://graph.microsoft.com/v1.0 (mail only), trusting ``idp``'s tokens.

    ``latency`` seconds are added to every request; ``max_concurrent`` requests may be in
    flight at once per app and mailbox (Outlook's limit is four, includes/throttling-outlook.md),
    more answer 429 ApplicationThrottled with ``Retry-After: concurrency_retry_after``.
    ``faults`` switches on what the real service does besides its reference pages (paging
    gaps, failing messages, refusals, the request budget, 503/504: sandbox.graph.faults);
    ``add_delegate(rights=...)`` and ``remove_folder`` shape mailboxes the way they are met.
    """

    base_path = "/v1.0"  # base_url is then mailintake's graph_url

    def __init__(self, idp: IdentityProvider, resource: str = GRAPH) -> None:
        self.idp = idp
        # The Graph root stood in for: https://graph.microsoft.com, or a national cloud's
        # (https://graph.microsoft.us, …), whose tokens name it as their audience.
        self.resource = resource
        self.store = Store()
        self.latency = 0.0
        self.max_concurrent = 4
        self.concurrency_retry_after: float = 1
        self.faults = Faults()  # what the real service does that its pages hardly say
        self._lock = threading.Lock()
        self._throttle_left = 0
        self._throttle_retry_after: float = 1
        self._in_flight: Counter[tuple[str, str]] = Counter()
        self._stats: dict[str, Any] = {}
        self.reset_stats()
        # Change notifications (sandbox/graph/subscriptions.py): ``subscriptions.lifecycle``
        # sends lifecycle notifications, ``subscriptions.clock`` decides expiry.
        self.subscriptions = Subscriptions(self)
        self.asgi = build_app(self)

    # --- mailboxes ----------------------------------------------------------------------

    def add_mailbox(
        self, address: str, delegates: set[str] | None = None, display_name: str | None = None
    ) -> str:
        """Returns the mailbox user's object id (``/users/{id}`` accepts it or the address).
        ``delegates``: users whose delegated tokens may open this mailbox (FullAccess)."""
        return self.store.add_mailbox(address, delegates, display_name).object_id

    def add_delegate(self, mailbox: str, user: str, rights: str = "full") -> None:
        """``rights``: "full" (Full Access), "read" (read-only, e.g. Reviewer: every change
        answers 403 ErrorAccessDenied, as message-update.md's permissions imply for a
        delegate without write access) or "no_folders" (mailbox access without rights on its
        folders: 404 ErrorFolderNotFound, microsoft-graph-docs-contrib#4029)."""
        if rights not in ("full", "read", "no_folders"):
            raise ValueError(f"rights must be full, read or no_folders, not {rights!r}")
        with self.store.lock:
            box = self._box(mailbox)
            user = user.lower()
            box.delegates.add(user)
            box.read_only.discard(user)
            box.no_folder_rights.discard(user)
            if rights == "read":
                box.read_only.add(user)
            elif rights == "no_folders":
                box.no_folder_rights.add(user)

    def remove_folder(self, mailbox: str, folder: str) -> None:
        """Takes an (empty) folder out of the mailbox, a well-known one too: mailboxes exist
        without some of them (no Archive folder until Outlook's one-click Archive was set up;
        "Default folder Root not found", domainaware/parsedmarc#609,
        David-Barrett-MS/PowerShell-EWS-Scripts#33). GET /mailFolders/archive then answers
        404 ErrorItemNotFound."""
        box = self._box(mailbox)
        with self.store.lock:
            target = self._folder(box, folder)
            if box.in_folder(target) or box.children(target, hidden=True):
                raise ValueError(f"folder {folder!r} is not empty")
            del box.folders[target.id]

    def add_folder(self, mailbox: str, display_name: str, parent: str = ROOT) -> str:
        box = self._box(mailbox)
        return self.store.add_folder(box, display_name, self._folder(box, parent)).id

    def folder_id(self, mailbox: str, folder: str) -> str:
        return self._folder(self._box(mailbox), folder).id

    def deliver(
        self,
        mailbox: str,
        raw: bytes,
        folder: str = "inbox",
        *,
        is_read: bool = False,
        received: datetime | None = None,
    ) -> str:
        """Puts a message in the mailbox (its subscriptions are notified); returns its
        immutable id."""
        box = self._box(mailbox)
        target = self._folder(box, folder)
        message = self.store.deliver(box, raw, target, is_read=is_read, received=received)
        self.subscriptions.message_created(box, message)
        return message.immutable_id

    def messages(self, mailbox: str, folder: str | None = "inbox") -> list[dict[str, Any]]:
        """The messages of a folder (all folders with None), in delivery order."""
        box = self._box(mailbox)
        with self.store.lock:
            target = self._folder(box, folder).id if folder is not None else None
            return [
                {
                    "id": m.immutable_id,
                    "regular_id": m.regular_id,
                    "isRead": m.is_read,
                    "raw": m.raw,
                    "folder": box.name_of(m.folder_id),
                    "subject": m.summary.subject,
                    "internetMessageId": m.summary.internet_message_id,
                    "receivedDateTime": m.received,
                }
                for m in sorted(box.messages.values(), key=lambda m: m.seq)
                if target is None or m.folder_id == target
            ]

    def folder_of(self, mailbox: str, immutable_id: str) -> str:
        """The well-known name of the message's folder, or its display name; KeyError when
        the message is gone (permanently deleted)."""
        box = self._box(mailbox)
        with self.store.lock:
            return box.name_of(box.messages[immutable_id].folder_id)

    def _box(self, mailbox: str) -> Mailbox:
        found = self.store.mailbox(mailbox)
        if found is None:
            raise KeyError(f"no mailbox {mailbox!r}")
        return found

    def _folder(self, box: Mailbox, key: str) -> Folder:
        with self.store.lock:
            found = box.folder(key) or next(
                (f for f in box.folders.values() if f.display_name.lower() == key.lower()), None
            )
        if found is None:
            raise KeyError(f"no folder {key!r} in {box.address}")
        return found

    # --- faults and statistics ----------------------------------------------------------

    def throttle_next(self, n: int, retry_after: float = 1) -> None:
        """The next ``n`` requests answer 429 TooManyRequests with ``Retry-After``."""
        with self._lock:
            self._throttle_left = n
            self._throttle_retry_after = retry_after

    @property
    def stats(self) -> dict[str, Any]:
        """requests, throttled, max_concurrency_seen (requests of one app in one mailbox
        served at once), by_path (request counts by method and path)."""
        with self._lock:
            return {**self._stats, "by_path": dict(self._stats["by_path"])}

    def reset_stats(self) -> None:
        with self._lock:
            self._stats = {
                "requests": 0,
                "throttled": 0,
                "max_concurrency_seen": 0,
                "by_path": Counter(),
            }

    def note_request(self, method: str, path: str) -> None:
        with self._lock:
            self._stats["requests"] += 1
            self._stats["by_path"][f"{method} {path}"] += 1

    def note_throttled(self) -> None:
        with self._lock:
            self._stats["throttled"] += 1

    def take_throttle(self) -> float | None:
        with self._lock:
            if self._throttle_left <= 0:
                return None
            self._throttle_left -= 1
            return self._throttle_retry_after

    def admit(self, client_id: str, mailbox: str) -> Callable[[], None]:
        """Counts one request in flight for (app, mailbox), or raises 429; returns the
        function that ends it (called once, when the server has finished with the request)."""
        key = (client_id, mailbox.lower())
        with self._lock:
            if self._in_flight[key] >= self.max_concurrent:
                raise mailbox_concurrency(self.concurrency_retry_after)
            self._in_flight[key] += 1
            seen = self._stats["max_concurrency_seen"]
            self._stats["max_concurrency_seen"] = max(seen, self._in_flight[key])
        done = threading.Event()

        def release() -> None:
            if done.is_set():
                return
            done.set()
            with self._lock:
                self._in_flight[key] -= 1

        return release

    def wait(self) -> None:
        if self.latency > 0:
            time.sleep(self.latency)
