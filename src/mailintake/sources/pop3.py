"""POP3 (poplib): ``AUTH XOAUTH2`` with its continuation, UIDL as the key, RETR, and DELE for
``after_import: delete``, made final by QUIT (``commit``); RETR and DELE are pipelined
(pop3_wire)."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import email.utils
import poplib
import ssl
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mailintake.enums import AfterImport, AuthState
from mailintake.errors import (
    AuthorizationRequired,
    MessageUnavailable,
    NetworkError,
    SourceError,
)
from mailintake.mime.parse import subject_and_sender
from mailintake.net import tls
from mailintake.oauth.sasl import xoauth2
from mailintake.sources import unreachable
from mailintake.sources.base import Fetched, KnownKeys, SourceItem, TokenProvider
from mailintake.sources.pop3_listing import Listing, screen
from mailintake.sources.pop3_wire import Pipe, pipelining


@dataclass(frozen=True)
class Pop3Settings:
    host: str
    port: int
    security: str
    username: str
    login_as: str
    after_import: str  # delete | keep
    timeout: float = 60.0
    batch: int = 200  # messages read in one go


class Pop3Source:
    protocol = "pop3"
    # The engine may fetch the next batch while this one is delivered: the session's
    # commands are taken in turn under a lock.
    prefetch_safe = True
    # No cursor: every listing is the whole mailbox, oldest first (the engine recognises
    # what it listed before by a digest: engine.listing_digest).
    lists_whole_mailbox = True

    def __init__(self, settings: Pop3Settings, token: TokenProvider, mailbox: str) -> None:
        self.settings = settings
        self.token = token
        self.mailbox = mailbox
        self.client: poplib.POP3 | None = None
        self._pipe: Pipe | None = None
        self._turn = threading.Lock()
        self._numbers: dict[str, int] = {}  # message number by UIDL: those to fetch
        self._listing: Listing | None = None  # the last UIDL answer
        # DELE waits for QUIT
        self.acknowledged_at_commit = settings.after_import == AfterImport.DELETE

    def _what(self) -> str:
        return f"{self.mailbox}: POP3 {self.settings.host}:{self.settings.port}"

    def open(self) -> None:
        s = self.settings
        context = tls.default_context()
        try:
            client = _connect(s, context)
        except (OSError, poplib.error_proto) as exc:
            raise unreachable.cannot_connect(self._what(), exc, "pop3", s) from exc
        self.client = client
        self._login(client)
        self._pipe = Pipe(client, pipelining=pipelining(client))

    def _login(self, client: poplib.POP3) -> None:
        s = self.settings
        initial = base64.b64encode(xoauth2(s.login_as, self.token())).decode()
        try:
            answer = _command(client, "AUTH XOAUTH2")
            if answer.startswith(b"+"):
                answer = _command(client, initial)
        except poplib.error_proto as exc:
            text = exc.args[0] if exc.args else b""
            if isinstance(text, bytes) and text.startswith(b"+"):
                # A JSON error challenge (RFC 7628): answer it empty, then it fails.
                with contextlib.suppress(poplib.error_proto):
                    _command(client, "")
            raise AuthorizationRequired(
                f"{self._what()}: the server refused the token for {s.login_as}: {exc}",
                state=AuthState.ERROR,
            ) from exc
        except OSError as exc:
            raise NetworkError(f"{self._what()}: login failed: {exc}") from exc
        if not answer.startswith(b"+OK"):
            raise AuthorizationRequired(
                f"{self._what()}: the server refused the token for {s.login_as}: {answer!r}",
                state=AuthState.ERROR,
            )

    def list_pages(self, known: KnownKeys | None = None) -> Iterator[list[SourceItem]]:
        yield self.list_items(known)  # UIDL and LIST answer for the whole mailbox at once

    def list_items(self, known: KnownKeys | None = None) -> list[SourceItem]:
        """The messages of the mailbox not imported yet (all of them without ``known``). The
        UIDL answer is screened at once (screen); sizes (LIST) are asked for only when
        something is new."""
        assert self._pipe is not None
        try:
            with self._turn:
                answer = self._pipe.answer("UIDL")
        except (OSError, poplib.error_proto) as exc:
            raise SourceError(f"{self._what()}: listing: {exc}") from exc
        listing = self._listing = screen(answer)
        keys = listing.keys
        done = known(keys) if known is not None else set()
        self._numbers = {}
        new = [i for i in range(len(keys)) if keys[i] not in done] if len(done) < len(keys) else []
        if not new:
            return []
        try:
            with self._turn:
                sizes = self._pipe.listing("LIST")
        except (OSError, poplib.error_proto) as exc:
            raise SourceError(f"{self._what()}: listing: {exc}") from exc
        size_of = {}
        for line in sizes:  # "number size", and anything after it (RFC 1939 §5)
            words = line.split(maxsplit=2)
            if len(words) >= 2 and words[0].isdigit() and words[1].isdigit():
                size_of[int(words[0])] = int(words[1])
        items = []
        for i in new:
            uidl = listing.uidl(i)
            number = self._numbers[uidl] = int(listing.numbers[i])
            items.append(SourceItem(key=keys[i], source={"uidl": uidl}, size=size_of.get(number)))
        return items

    def fetch(self, items: Sequence[SourceItem]) -> Iterator[tuple[SourceItem, Fetched]]:
        """RETR, several outstanding at once when the server allows (PIPELINING); each chunk
        is read whole before it is handed on, so the session is free between chunks. A RETR
        answered -ERR fails that message alone (the session stays in step); a connection
        lost raises."""
        assert self._pipe is not None
        wanted = {}
        for item in items:
            number = self._numbers.get(item.source["uidl"])
            if number is not None:
                wanted[number] = item
        numbers = list(wanted)
        for start in range(0, len(numbers), self.settings.batch):
            try:
                with self._turn:
                    part = numbers[start : start + self.settings.batch]
                    chunk = list(self._pipe.retrieve_each(part))
                    named = {n: self._headline(n) for n, got in chunk if not isinstance(got, bytes)}
            except (OSError, poplib.error_proto) as exc:
                raise SourceError(f"{self._what()}: RETR: {exc}") from exc
            for number, message in chunk:
                item = wanted[number]
                if isinstance(message, bytes):
                    yield item, message
                    continue
                answer = message.args[0] if message.args else b""
                text = answer.decode(errors="replace") if isinstance(answer, bytes) else answer
                subject, sender = named[number]
                yield (
                    dataclasses.replace(item, subject=subject, sender=sender),
                    MessageUnavailable(
                        f"{self._what()}: RETR of message {item.source['uidl']} answered {text}"
                    ),
                )

    def _headline(self, number: int) -> tuple[str | None, str | None]:
        """The subject and sender of a message whose RETR failed, to show with it: ``TOP n
        0``, once, best effort. Refused (-ERR, or a server without TOP), they stay unknown;
        a connection lost under it leaves them unknown too: it is closed, never read out of
        step, and what was read already goes on (the next command finds it lost)."""
        assert self._pipe is not None
        assert self.client is not None
        try:
            answer = self._pipe.top(number)
        except (OSError, poplib.error_proto):
            with contextlib.suppress(OSError):
                self.client.sock.close()  # the next command raises OSError, never reads
            return None, None
        if isinstance(answer, bytes):
            return subject_and_sender(answer)
        return None, None

    def acknowledge(self, sources: Sequence[dict[str, Any]]) -> None:
        if self.settings.after_import != AfterImport.DELETE or self._pipe is None:
            return
        wanted = [str(source.get("uidl")) for source in sources]
        if any(uidl not in self._numbers for uidl in wanted):  # not to fetch: known ones
            self._number_all()
        numbers = [number for uidl in wanted if (number := self._numbers.get(uidl)) is not None]
        try:
            with self._turn:
                self._pipe.delete(numbers)
        except (OSError, poplib.error_proto) as exc:
            raise SourceError(f"{self._what()}: DELE: {exc}") from exc

    def _number_all(self) -> None:
        """The message number of every UIDL (what an earlier pass left to acknowledge)."""
        if self._listing is None:  # not listed yet in this session
            assert self._pipe is not None
            try:
                with self._turn:
                    self._listing = screen(self._pipe.answer("UIDL"))
            except (OSError, poplib.error_proto) as exc:
                raise SourceError(f"{self._what()}: listing: {exc}") from exc
        listing = self._listing
        self._numbers.update(zip(listing.uidls(), map(int, listing.numbers), strict=True))

    def commit(self) -> None:
        """QUIT: the server deletes what DELE marked (RFC 1939 §6, the UPDATE state) and
        answers +OK only when it did. The session ends here."""
        with self._turn:
            client, self.client, self._pipe = self.client, None, None
            if client is None:
                return
            try:
                client.quit()
            except (OSError, poplib.error_proto) as exc:
                client.close()
                raise SourceError(
                    f"{self._what()}: QUIT, which makes the deletions final, failed: {exc}"
                ) from exc

    def close(self) -> None:
        with self._turn:
            if self.client is not None:
                try:
                    self.client.quit()  # commits the deletions
                except (OSError, poplib.error_proto):
                    self.client.close()
                self.client = None
                self._pipe = None


def _command(client: poplib.POP3, line: str) -> bytes:
    """One command and its one-line answer (poplib has no SASL API; this is its own)."""
    send = getattr(client, "_shortcmd")  # noqa: B009 - private in typeshed, stable in poplib
    answer: bytes = send(line)
    return answer


def _connect(s: Pop3Settings, context: ssl.SSLContext) -> poplib.POP3:
    """A connection that has greeted us (and switched to TLS for STARTTLS). poplib leaves
    its socket open when the greeting fails (a port that waits for TLS says nothing to a
    plain connection): it is closed here."""
    kind = poplib.POP3_SSL if s.security == "ssl" else poplib.POP3
    client = kind.__new__(kind)
    try:
        if isinstance(client, poplib.POP3_SSL):
            poplib.POP3_SSL.__init__(client, s.host, s.port, timeout=s.timeout, context=context)
        else:
            poplib.POP3.__init__(client, s.host, s.port, timeout=s.timeout)
            if s.security == "starttls":
                client.stls(context)
    except BaseException:
        for part in (getattr(client, "file", None), getattr(client, "sock", None)):
            if part is not None:
                with contextlib.suppress(OSError):
                    part.close()
        raise
    return client


def header_date(raw: bytes) -> datetime | None:
    """POP3 has no server date: the Date header (for the output's date folder)."""
    end = raw.find(b"\r\n\r\n")
    head = raw if end == -1 else raw[:end]  # the header only: not a copy of the whole message
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"date:"):
            try:
                return email.utils.parsedate_to_datetime(line[5:].decode(errors="replace"))
            except (TypeError, ValueError, IndexError):
                return None
    return None
