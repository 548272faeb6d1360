"""IMAP (IMAPClient): XOAUTH2 or OAUTHBEARER, the configured folder, UIDVALIDITY + UID keys,
``BODY.PEEK[]`` in batches, and the after-import action as one command per batch. The listing
and the bodies, read in bulk, go through imap_wire's reader on the same connection. What is
listed goes on from the folder's checkpoint (imap_resume): only what is new."""

from __future__ import annotations

import contextlib
import dataclasses
import imaplib
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import imapclient
from imapclient.exceptions import IMAPClientError, LoginError

from mailintake.enums import AfterImport
from mailintake.errors import (
    MessageUnavailable,
    SourceError,
)
from mailintake.keys import imap_key_prefix
from mailintake.mime.parse import message_id, subject_and_sender
from mailintake.net import tls
from mailintake.observability.logging import get_logger
from mailintake.sources import imap_resume, unreachable
from mailintake.sources.base import Fetched, KnownKeys, Resume, SourceItem, TokenProvider
from mailintake.sources.imap_actions import after_import
from mailintake.sources.imap_login import authenticate, refused
from mailintake.sources.imap_narrow import narrowed
from mailintake.sources.imap_wire import Listed, Wire
from mailintake.store.checkpoints import Checkpoint

T = TypeVar("T")
log = get_logger(__name__)
LIST_PAGE = 1000  # messages whose sizes and dates one FETCH asks for


@dataclass(frozen=True)
class ImapSettings:
    host: str
    port: int
    security: str  # ssl | starttls | none
    username: str
    login_as: str  # the SASL user: the shared mailbox address, or username
    folder: str
    after_import: str
    move_to: str | None
    batch: int = 200
    timeout: float = 60.0


class ImapSource:
    protocol = "imap"
    # The engine may fetch the next batch while this one is delivered: the session's
    # commands (and a sign-in again) are taken in turn under a lock.
    prefetch_safe = True
    acknowledged_at_commit = False  # each action takes effect at once
    list_page = LIST_PAGE

    def __init__(
        self,
        settings: ImapSettings,
        token: TokenProvider,
        mailbox: str,
        renew: TokenProvider | None = None,
    ) -> None:
        self.settings = settings
        self.token = token
        self.renew = renew  # a new token, when the server refuses one not yet expired
        self.mailbox = mailbox
        self.client: Any = None
        self.uidvalidity: int | None = None
        self.uidnext: int | None = None  # as SELECT reported it
        self.folder = settings.folder
        self._turn = threading.RLock()
        self._suspects: set[int] = set()  # UIDs the listing failed on: fetched alone
        self._resume: Resume | None = None
        self._plan: imap_resume.Plan | None = None
        self._highest = 0  # the highest UID listed
        self._below = 0  # below UIDNEXT as the listing's SELECT gave it: listed, or gone
        self.complete = True  # see sources.base.Resumable
        self.recreated: str | None = None
        self.matched = 0

    def _what(self) -> str:
        s = self.settings
        return f"{self.mailbox}: IMAP {s.host}:{s.port}"

    def open(self) -> None:
        s = self.settings
        context = tls.default_context()
        client: imapclient.IMAPClient | None = None
        try:
            client = imapclient.IMAPClient(
                s.host,
                port=s.port,
                ssl=s.security == "ssl",
                ssl_context=context,
                timeout=s.timeout,
            )
            if s.security == "starttls":
                client.starttls(context)
        except (OSError, IMAPClientError) as exc:
            if client is not None:  # STARTTLS failed: the plain connection is closed
                with contextlib.suppress(Exception):
                    client.shutdown()
            raise unreachable.cannot_connect(self._what(), exc, "imap", s) from exc
        self.client = client
        self._login()
        try:
            selected = client.select_folder(s.folder, readonly=s.after_import == AfterImport.KEEP)
        except IMAPClientError as exc:
            raise SourceError(
                f"{self._what()}: cannot open folder '{s.folder}': {exc}{self._folders()}"
            ) from exc
        self.uidvalidity = int(selected.get(b"UIDVALIDITY", 0))
        uidnext = selected.get(b"UIDNEXT")
        self.uidnext = int(uidnext) if uidnext is not None else None
        if s.after_import == AfterImport.MOVE:
            self._check_move_target()

    def _check_move_target(self) -> None:
        """Before anything is imported: a move_to that is not a folder would leave every
        imported message in place, its move failing poll after poll."""
        target = self.settings.move_to or ""
        try:
            exists = self.client.folder_exists(target)
        except IMAPClientError as exc:
            raise SourceError(f"{self._what()}: cannot look up folder '{target}': {exc}") from exc
        if not exists:
            raise SourceError(
                f"{self._what()}: move_to '{target}' is not a folder of this mailbox"
                f"{self._folders()}"
            )

    def _folders(self) -> str:
        """The folders the server lists, to pick the right name (nothing if it lists none)."""
        try:
            listed = self.client.list_folders()
        except (OSError, IMAPClientError):
            return ""
        names = sorted(str(name) for _flags, _delimiter, name in listed)
        if not names:
            return ""
        more = ", …" if len(names) > 20 else ""
        return f"; the folders there: {', '.join(names[:20])}{more}"

    def _login(self) -> None:
        """Sign in with the token in hand. Refused, and with ``renew``, once more with a new
        one: a token may end before the expiry it was issued with (revoked: Entra's
        continuous access evaluation, a password change), and the server says only that it
        refuses it. When the renewal is refused too, the person must authorize again
        (AuthorizationRequired from ``renew``)."""
        try:
            authenticate(self.client, self.settings.login_as, self.token(), self._what())
        except LoginError as exc:
            if self.renew is None:
                raise refused(
                    self._what(), self.settings.username, self.settings.login_as, exc
                ) from exc
            log.info("imap.token_refused", mailbox=self.mailbox)
            try:
                authenticate(self.client, self.settings.login_as, self.renew(), self._what())
            except LoginError as again:
                raise refused(
                    self._what(), self.settings.username, self.settings.login_as, again
                ) from again

    def _key_prefix(self) -> str:
        """What every message key of the folder starts with (its UIDVALIDITY included)."""
        return imap_key_prefix(self.settings.folder, self.uidvalidity)

    def list_items(self, known: KnownKeys | None = None) -> list[SourceItem]:
        return [item for page in self.list_pages(known) for item in page]

    def resume(self, resume: Resume) -> None:
        self._resume = resume

    def list_pages(self, known: KnownKeys | None = None) -> Iterator[list[SourceItem]]:
        """The messages of the folder not handled yet (from its checkpoint: imap_resume), a
        page at a time: one SEARCH, then sizes and dates page by page, so the first messages
        are imported while the rest are listed. A message ``known`` says is imported already
        is left out, and asked nothing more."""
        plan = self._plan = imap_resume.plan(
            self._resume, self.settings.folder, self.uidvalidity, self.uidnext
        )
        if plan.criteria is None:  # nothing new, nothing due: no command at all
            self.complete = False
            return
        try:
            with self._turn:  # batches are fetched meanwhile in other threads
                uids = plan.kept(Wire.of(self.client).search(plan.criteria))
        except (OSError, IMAPClientError) as exc:
            raise SourceError(f"{self._what()}: listing '{self.settings.folder}': {exc}") from exc
        self._highest = max(uids, default=0)
        self._below = (self.uidnext or 1) - 1  # not of a SELECT after signing in again
        earlier: set[tuple[str, int]] | None = None
        if plan.former is not None and self._resume is not None:
            earlier = self._resume.earlier()
        for start in range(0, len(uids), self.list_page):
            yield self._page(uids[start : start + self.list_page], known, earlier)
        if plan.former is not None:
            self.recreated = imap_resume.recreated(
                self.settings.folder, plan.former, self.uidvalidity, self.matched
            )

    def checkpoint(self, handled: Sequence[SourceItem] | None) -> Checkpoint | None:
        plan = self._plan
        if plan is None or plan.criteria is None:
            return None  # listed nothing: the checkpoint stands
        if handled is None:  # below UIDNEXT as SELECT gave it, what SEARCH did not find is gone
            uids = [self._highest, self._below]
            return imap_resume.advanced(plan, self.folder, self.uidvalidity, uids)
        if plan.former is not None:  # a recreated folder: saved once the whole pass is done
            return None
        uids = [i.source["uid"] for i in handled if i.source.get("uidvalidity") == self.uidvalidity]
        return imap_resume.advanced(plan, self.folder, self.uidvalidity, uids)

    def _page(
        self, uids: list[int], known: KnownKeys | None, earlier: set[tuple[str, int]] | None
    ) -> list[SourceItem]:
        prefix = self._key_prefix()
        keys = {uid: f"{prefix}-{uid}" for uid in uids}
        done = known(list(keys.values())) if known is not None else set()
        wanted = [uid for uid in uids if keys[uid] not in done]
        # One command at a time on the connection (batches are fetched meanwhile in other
        # threads), on the connection of now: fetching may have signed in again. A message
        # the server fails on is listed without size and date (fetching it tells more).
        sizes = self._sizes_and_ids if earlier else self._sizes
        with self._turn:
            info, failed = narrowed(wanted, sizes, self._reconnect)
        self._suspects.update(failed)
        items = []
        for uid in wanted:
            listed = info.get(uid)
            if earlier and listed is not None and self._imported_before(listed, earlier):
                continue
            items.append(
                SourceItem(
                    key=keys[uid],
                    source={
                        "folder": self.settings.folder,
                        "uidvalidity": self.uidvalidity,
                        "uid": uid,
                    },
                    size=listed.size if listed else None,
                    received=listed.received if listed else None,
                )
            )
        return items

    def _again(self, what: str, call: Callable[[], T]) -> T:
        """Run an IMAP command; when the session has ended under it (the server dropped it,
        or Exchange's ``BYE Session invalidated - AccessTokenExpired`` once the token it
        logged in with expired), sign in again with a fresh token and retry once."""
        with self._turn:
            try:
                return call()
            except (OSError, IMAPClientError) as first:
                self._reconnect(first)
                try:
                    return call()
                except (OSError, IMAPClientError) as exc:
                    raise SourceError(f"{self._what()}: {what}: {exc}") from exc

    def fetch(self, items: Sequence[SourceItem]) -> Iterator[tuple[SourceItem, Fetched]]:
        """The messages in chunks of ``batch``; a message the server fails on alone (found
        by narrowing the chunk down, imap_narrow) comes as MessageUnavailable."""
        for start in range(0, len(items), self.settings.batch):
            chunk = list(items[start : start + self.settings.batch])
            uids = [i.source["uid"] for i in chunk]
            sound = [uid for uid in uids if uid not in self._suspects]
            with self._turn:
                bodies, failed = narrowed(sound, self._bodies, self._reconnect)
                for uid in uids:
                    if uid in self._suspects:  # alone, not narrowed down to again
                        alone, fails = narrowed([uid], self._bodies, self._reconnect)
                        bodies.update(alone)
                        failed.update(fails)
                named = {uid: self._headline(uid) for uid in failed}
            for item in chunk:
                uid = item.source["uid"]
                body = bodies.get(uid)
                if body is not None:
                    yield item, body
                elif uid in failed:
                    subject, sender = named[uid]
                    yield (
                        dataclasses.replace(item, subject=subject, sender=sender),
                        MessageUnavailable(
                            f"{self._what()}: the server fails to give message UID {uid} "
                            f"(fetched alone): {failed[uid]}"
                        ),
                    )

    def _headline(self, uid: int) -> tuple[str | None, str | None]:
        """The subject and sender of a message that failed alone, to show with it: its
        Subject and From fields only, asked for once, best effort. Refused (NO, BAD), they
        stay unknown. A session that ends under it (Dovecot's BYE for a file it cannot read)
        is closed here: the next command signs in again, as after any lost session, and
        what was fetched already goes on."""
        try:
            block = Wire.of(self.client).headline(uid)
        except (OSError, imaplib.IMAP4.abort) as exc:
            log.info("imap.headline_lost", mailbox=self.mailbox, uid=uid, reason=str(exc)[:200])
            with contextlib.suppress(OSError):
                self.client.shutdown()
            return None, None
        except imaplib.IMAP4.error:
            return None, None
        return subject_and_sender(block) if block else (None, None)

    def _bodies(self, uids: list[int], into: dict[int, bytes]) -> None:
        Wire.of(self.client).bodies(uids, into)

    def _sizes(self, uids: list[int], into: dict[int, Listed]) -> None:
        Wire.of(self.client).sizes_and_dates(uids, into)

    def _sizes_and_ids(self, uids: list[int], into: dict[int, Listed]) -> None:
        Wire.of(self.client).sizes_and_dates(uids, into, message_ids=True)

    def _imported_before(self, listed: Listed, earlier: set[tuple[str, int]]) -> bool:
        """A message of a recreated folder whose Message-ID and size match one imported."""
        found = message_id(listed.header) if listed.header else None
        if found is None or listed.size is None or (found, listed.size) not in earlier:
            return False
        self.matched += 1
        return True

    def _reconnect(self, cause: Exception) -> None:
        """The session ended under a command: sign in again (raises when that fails: the
        server is away, or the token is refused)."""
        with self._turn:
            log.info("imap.reconnect", mailbox=self.mailbox, reason=str(cause)[:200])
            before = self.uidvalidity
            self.close()
            self.open()
            if self.uidvalidity != before:
                raise SourceError(
                    f"{self._what()}: folder '{self.settings.folder}' was recreated "
                    "(UIDVALIDITY changed) while importing; the next poll starts over"
                ) from cause

    def acknowledge(self, sources: Sequence[dict[str, Any]]) -> None:
        action = self.settings.after_import
        uids = [
            s["uid"]
            for s in sources
            if s.get("uidvalidity") == self.uidvalidity and s.get("folder") == self.settings.folder
        ]
        if not uids or action == AfterImport.KEEP:
            return
        move_to = self.settings.move_to or ""
        self._again(  # the client at the time: another after signing in again
            f"after-import action {action}",
            lambda: after_import(self.client, action, uids, move_to),
        )

    def commit(self) -> None:
        return None

    def close(self) -> None:
        with self._turn:
            if self.client is not None:
                try:
                    self.client.logout()
                except (OSError, IMAPClientError):
                    with contextlib.suppress(OSError):
                        self.client.shutdown()
                self.client = None


__all__ = ["ImapSettings", "ImapSource"]
