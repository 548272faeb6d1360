"""Microsoft Graph (oauth-facts §3): what is new in one folder by delta query from its saved
deltaLink (sources.graph_delta); without one, every message with ``@odata.nextLink`` paging,
checked against the folder's ``totalItemCount``; raw MIME from ``$value``; after-import
actions whose 404 a GET confirms (sources.graph_actions). How each request is sent — the
token and its renewal on 401, ``Prefer: IdType="ImmutableId"`` (§3.8), four at once per
mailbox (§3.6), 429/503/504 sent again after ``Retry-After`` — is sources.graph_http's; the
wait a 429 asks for is kept for every worker (sources.graph_limits). Folders by name:
sources.graph_folders. Refusals are diagnosed by mailintake.oauth.graph_access."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx2

from mailintake.enums import AfterImport
from mailintake.net.http import ProxySettings, proxy_of, translate
from mailintake.oauth.graph_access import Caller
from mailintake.observability.logging import get_logger
from mailintake.sources.base import Fetched, KnownKeys, Resume, SourceItem, TokenProvider
from mailintake.sources.graph_actions import Actions
from mailintake.sources.graph_answers import GraphRefused
from mailintake.sources.graph_delta import CHANGES, DeltaListing, Round
from mailintake.sources.graph_downloads import Downloads, outcome
from mailintake.sources.graph_folders import Folders
from mailintake.sources.graph_http import Bearer, graph_client, prefer, refusal
from mailintake.sources.graph_items import listed_item, unknown
from mailintake.sources.graph_limits import Book, Limits
from mailintake.spool import CHUNK, Body, SpoolWriter
from mailintake.store.checkpoints import Checkpoint

log = get_logger(__name__)
# A modest page, always with $select: a large $top without $select can time out (504, §3.1).
PAGE = 100
RELIST = 25  # the page of a second listing when the first came up short
# PR_MESSAGE_SIZE (PidTagMessageSize), asked for with the listing so that max_message_size
# skips a message before it is downloaded (docs/providers/microsoft.md, "Message sizes").
SIZE_PROPERTY = "Integer 0x0E08"
LISTED = "id,receivedDateTime,internetMessageId,subject,from"
AHEAD = 40  # messages downloaded before the import asks for them
# Graph's listing gives no sizes, so the engine cannot end a batch at its byte limit as it does
# for IMAP and POP3 (100 messages or 64 MB, engine/poll.py). Instead a download over this goes
# to a spool file as it arrives: a batch of 100 holds at most 64 MB in memory here too, and
# a mailbox of scans no longer needs gigabytes while batches are fetched and written.
SPOOL_FROM = 640 << 10


@dataclass(frozen=True)
class GraphSettings:
    """Everything the source reads of its mailbox, decided once (engine.factories, from the
    mailbox's effective settings: config.resolve, where the national cloud picks graph_url)."""

    graph_url: str
    mailbox: str  # the address whose mailbox is read (shared mailbox, or the user's own)
    folder: str
    after_import: str
    move_to: str | None
    proxy: ProxySettings | None = None
    attempts: int = 6
    spool: Path | None = None  # where downloads over SPOOL_FROM bytes are written
    user: str | None = None  # the signed-in user; None with an application token
    client_id: str | None = None
    backoff: float = 1.0  # first wait after a 503/504 without Retry-After, doubled each time
    max_size: int | None = None  # max_message_size: a larger listed message is not fetched ahead


class GraphSource:
    protocol = "graph"
    prefetch_safe = True  # HTTP requests may overlap: the next batch is fetched meanwhile
    acknowledged_at_commit = False  # each action takes effect at once

    def __init__(
        self,
        settings: GraphSettings,
        token: TokenProvider,
        name: str,
        renew: Callable[[], str] | None = None,
        throttle: Book | None = None,
    ) -> None:
        self.settings = settings
        self.name = name
        # Every request of this mailbox, from any thread, within Outlook's four (§3.6), and
        # the waits Graph asks for, kept for every worker (sources.graph_limits).
        self.limits = Limits(name, settings.client_id or "", settings.mailbox, throttle)
        self.auth = Bearer(token, renew)
        self.client = graph_client(
            settings.proxy, self.limits, lambda: (self.settings.attempts, self.settings.backoff)
        )
        self._downloads = Downloads(self._download, AHEAD)
        self.base = f"{settings.graph_url.rstrip('/')}/users/{quote(settings.mailbox)}"
        self.caller = Caller(name, settings.mailbox, settings.user, settings.client_id)
        self.folders = Folders(name, settings.mailbox, self.base, self.caller, self._request)
        self.actions = Actions(name, settings, self.base, self._request, self.folder_id)
        self.warnings: list[str] = []  # said in the poll's result and log
        self._sizes = True  # the listing asks for PR_MESSAGE_SIZE until Graph refuses it
        # Where the import stands (sources.base.Resumable): the checkpoint of the folder of
        # this mailbox is its deltaLink (sources.graph_delta).
        self.folder = f"{settings.mailbox}/{settings.folder}"
        self.complete = True
        self.recreated: str | None = None
        self.matched = 0
        self._resume: Resume | None = None
        self._delta: DeltaListing | None = None
        self._counted: tuple[str, int | None] | None = None  # a first round's folder, count

    def open(self) -> None:
        self.limits.before_session()  # Graph's wait for this app and mailbox, if one lasts
        self.auth.open()

    def _check_move_target(self) -> None:
        """Before anything is imported: a move_to that is not a folder would leave every
        imported message in place, its move failing poll after poll (asked once a pass, and
        not at all by a poll with nothing new)."""
        if self.settings.after_import == AfterImport.MOVE:
            self.folder_id(self.settings.move_to or "")

    def folder_id(self, name: str) -> str:
        return self.folders.folder_id(name)

    # --- one request ----------------------------------------------------------------------

    def _request(self, method: str, url: str, **kwargs: Any) -> httpx2.Response:
        with self._stream(method, url, **kwargs) as answer:
            answer.read()
        return answer

    @contextlib.contextmanager
    def _stream(self, method: str, url: str, **kwargs: Any) -> Iterator[httpx2.Response]:
        """A successful answer whose body the caller reads; the request keeps its slot until
        then (Outlook counts it until it is complete). Any other answer is raised as what
        it means; one Graph gives with a code as GraphRefused."""
        headers = prefer(kwargs.pop("headers", {}))
        try:
            request = self.client.build_request(method, url, headers=headers, **kwargs)
            answer = self.client.send(request, stream=True, auth=self.auth)
        except httpx2.HTTPError as exc:
            raise translate(exc, f"{self.name}: Graph {method}", proxy_of(self.client)) from exc
        try:
            if answer.status_code < 400:
                yield answer
                return
            answer.read()  # an error's body is small: read it to report it
        except httpx2.HTTPError as exc:
            raise translate(exc, f"{self.name}: Graph {method}", proxy_of(self.client)) from exc
        finally:
            answer.close()
        raise refusal(self.name, self.caller, method, url, answer)

    # --- the source ---------------------------------------------------------------------

    def list_items(self, known: KnownKeys | None = None) -> list[SourceItem]:
        return [item for page in self.list_pages(known) for item in page]

    def resume(self, resume: Resume) -> None:
        self._resume = resume

    def checkpoint(self, handled: Sequence[SourceItem] | None) -> Checkpoint | None:
        """The round's deltaLink, once the whole pass is handled (never after one batch:
        the link says nothing of where in the round a batch stands)."""
        link = self._delta.delta_link if self._delta is not None else None
        return Checkpoint(self.folder, cursor=link) if handled is None and link else None

    def list_pages(self, known: KnownKeys | None = None) -> Iterator[list[SourceItem]]:
        """What is new since the folder's checkpoint (``resume``; sources.graph_delta), or
        without one every message of the folder (``_listing``)."""
        if self._resume is None:
            self._check_move_target()
            yield from self._whole(known)
            return
        delta = self._delta = DeltaListing(
            self.name,
            self.settings.folder,
            self._resume,
            self.settings.graph_url,
            self._page,
            self._first_round,
            self.warnings,
        )
        for page in delta.pages():
            self.complete = delta.complete
            wanted = self._wanted(page, known)
            if wanted:
                self._check_move_target()
            self._downloads.offer(wanted)
            yield page
        self.complete = delta.complete
        if self._counted is not None:  # a first round: checked against the folder's count
            whole = yield from self._missed(*self._counted, delta.seen, known)
            if not whole:
                delta.delta_link = None  # not saved: the next poll starts a first round

    def _first_round(self) -> Round:
        """A round without a token: every message of the folder, then the deltaLink; the
        folder's count asked for too (``_missed``), and the move target checked."""
        self._check_move_target()
        found = self.folder_id(self.settings.folder)
        self._counted = (found, self._total(found))
        folder = quote(found, safe="")
        params = {"$select": LISTED, "changeType": CHANGES}
        if self._sizes:
            params["$expand"] = f"singleValueExtendedProperties($filter=id eq '{SIZE_PROPERTY}')"
        return Round(self._page, f"{self.base}/mailFolders/{folder}/messages/delta", params)

    def _whole(self, known: KnownKeys | None = None) -> Iterator[list[SourceItem]]:
        """The folder's messages a page at a time, following ``@odata.nextLink`` (§3.1), so
        that the first pages are imported while the next are listed.

        Outlook's paging is not to be trusted blindly: a nextLink may be missing while more
        mail exists, pages come back shorter than ``$top`` (docs/providers/microsoft.md,
        "Listing"). The listing is compared with the folder's ``totalItemCount``; when it
        came up short, that is said (a warning) and the folder is listed again with smaller
        pages, within the pass, for the messages the first listing missed."""
        folder = self.folder_id(self.settings.folder)
        total = self._total(folder)
        seen: set[str] = set()
        for page in self._listing(folder, PAGE):
            seen.update(item.key for item in page)
            self._downloads.offer(self._wanted(page, known))
            yield page
        yield from self._missed(folder, total, seen, known)

    def _missed(
        self, folder: str, total: int | None, seen: set[str], known: KnownKeys | None
    ) -> Generator[list[SourceItem], None, bool]:
        """After a listing that gave ``seen``: when that is short of the folder's ``total``,
        the folder listed again with smaller pages for what it missed, and said. Whether
        every message was found in the end."""
        if total is None or len(seen) >= total:
            return True
        self._warn(
            "graph.listing_incomplete",
            f"{self.name}: Graph listed {len(seen)} of the {total} messages in "
            f"'{self.settings.folder}'; listed again with pages of {RELIST}",
            listed=len(seen),
            total=total,
        )
        first = len(seen)
        for page in self._listing(folder, RELIST):
            fresh = [item for item in page if item.key not in seen]
            seen.update(item.key for item in fresh)
            if fresh:
                self._downloads.offer(self._wanted(fresh, known))
                yield fresh
        if len(seen) < total:
            self._warn(
                "graph.listing_still_incomplete",
                f"{self.name}: after listing again Graph had given {len(seen)} of the {total} "
                f"messages in '{self.settings.folder}' (the rest stays for the next poll)",
                listed=len(seen),
                total=total,
            )
            return False
        if len(seen) > first:
            log.info("graph.listing_completed", mailbox=self.name, found=len(seen) - first)
        return True

    def _wanted(self, page: list[SourceItem], known: KnownKeys | None) -> list[SourceItem]:
        """What the import will likely ask for: not imported yet, not over max_message_size
        by the size the listing gave (the engine skips those without downloading them)."""
        limit = self.settings.max_size
        fitting = [i for i in page if limit is None or i.size is None or i.size <= limit]
        return unknown(fitting, known)

    def _total(self, folder: str) -> int | None:
        answer = self._request(
            "GET",
            f"{self.base}/mailFolders/{quote(folder, safe='')}",
            params={"$select": "id,totalItemCount"},
        )
        value = answer.json().get("totalItemCount")
        return value if isinstance(value, int) else None

    def _listing(self, folder: str, top: int) -> Iterator[list[SourceItem]]:
        url: str | None = f"{self.base}/mailFolders/{quote(folder, safe='')}/messages"
        first = {"$select": LISTED, "$top": str(top)}
        if self._sizes:
            first["$expand"] = f"singleValueExtendedProperties($filter=id eq '{SIZE_PROPERTY}')"
        params: dict[str, str] | None = first
        while url:
            body = self._page(url, params, {})
            params = None  # the nextLink carries everything (§3.1)
            url = body.get("@odata.nextLink")
            yield [listed_item(message) for message in body.get("value", [])]

    def _page(
        self, url: str, params: dict[str, str] | None, headers: dict[str, str]
    ) -> dict[str, Any]:
        """One page of a listing. Sizes are a saving, not a need: a Graph that refuses their
        expansion is asked again without it, and sizes are known after the download."""
        while True:
            try:
                body: dict[str, Any] = self._request(
                    "GET", url, params=params, headers=headers
                ).json()
                return body
            except GraphRefused as exc:
                if exc.status != 400 or params is None or "$expand" not in params:
                    raise
                log.info("graph.sizes_refused", mailbox=self.name, error=str(exc))
                self._sizes = False
                params.pop("$expand")

    def _warn(self, event: str, message: str, **fields: Any) -> None:
        self.warnings.append(message)
        log.warning(event, mailbox=self.name, **fields)

    def _download(self, item: SourceItem) -> Body:
        """The raw MIME (§3.3), streamed: a large message goes to a spool file as it arrives."""
        url = f"{self.base}/messages/{quote(item.source['id'], safe='')}/$value"
        writer = SpoolWriter(
            self.settings.spool or Path(tempfile.gettempdir()) / "mailintake", SPOOL_FROM
        )
        try:
            with self._stream("GET", url) as answer:
                for block in answer.iter_bytes(CHUNK):
                    writer.write(block)
        except BaseException:
            writer.abandon()
            raise
        return writer.finish()

    def fetch(self, items: Sequence[SourceItem]) -> Iterator[tuple[SourceItem, Fetched]]:
        """Up to four downloads in flight all the time, in listing order, across batches;
        results in order. A message Graph cannot give fails alone (graph_downloads.outcome:
        checked with a request for the folder)."""
        futures = [self._downloads.claim(item) for item in items]
        probe = lambda: self._total(self.folder_id(self.settings.folder))  # noqa: E731
        for item, future in zip(items, futures, strict=True):
            yield item, outcome(self.name, item, future, probe)

    def acknowledge(self, sources: Sequence[dict[str, Any]]) -> None:
        self.actions.acknowledge(sources)

    def commit(self) -> None:
        return None

    def close(self) -> None:
        self._downloads.close()
        self.client.close()


__all__ = ["GraphRefused", "GraphSettings", "GraphSource"]
