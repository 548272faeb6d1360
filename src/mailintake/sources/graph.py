"""Microsoft Graph (oauth-facts §3): messages of one folder with ``@odata.nextLink`` paging,
checked against the folder's ``totalItemCount``; raw MIME from ``$value``, and after-import
actions whose 404 a GET confirms. How each request is sent — the token and its renewal on
401, ``Prefer: IdType="ImmutableId"`` (§3.8), four at once per mailbox (§3.6), 429/503/504
sent again after ``Retry-After`` — is sources.graph_http's; the wait a 429 asks for is kept
for every worker (sources.graph_limits). Folders by name: sources.graph_folders. Refusals of
the mailbox are diagnosed by mailintake.oauth.graph_access."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx2

from mailintake.config import resolve
from mailintake.config.matrix import Grant
from mailintake.config.models import MailboxSpec
from mailintake.enums import AfterImport, AuthState
from mailintake.errors import AuthorizationRequired, ConfigError, SourceError
from mailintake.net.http import ProxySettings, proxy_of, translate
from mailintake.oauth import graph_access
from mailintake.oauth.graph_access import Caller
from mailintake.observability.logging import get_logger
from mailintake.sources.base import Fetched, KnownKeys, SourceItem, TokenProvider
from mailintake.sources.graph_answers import (
    GraphRefused,
    error_code,
    error_message,
    error_text,
    gave_up,
)
from mailintake.sources.graph_downloads import CONCURRENCY, Downloads, outcome
from mailintake.sources.graph_folders import Folders
from mailintake.sources.graph_http import FAILURES, RETRIED, WAIT, Bearer, graph_client, prefer
from mailintake.sources.graph_items import listed_item, unknown
from mailintake.sources.graph_limits import Book, Limits
from mailintake.spool import CHUNK, Body, SpoolWriter

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
        self.warnings: list[str] = []  # said in the poll's result and log
        self._sizes = True  # the listing asks for PR_MESSAGE_SIZE until Graph refuses it

    def open(self) -> None:
        self.limits.before_session()  # Graph's wait for this app and mailbox, if one lasts
        self.auth.open()
        if self.settings.after_import == AfterImport.MOVE:
            # Before anything is imported: a move_to that is not a folder would leave every
            # imported message in place, its move failing poll after poll.
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
        raise self._refused(method, url, answer)

    def _refused(self, method: str, url: str, answer: httpx2.Response) -> Exception:
        if answer.status_code in RETRIED:  # still, after every attempt (graph_http.Paced)
            failures = answer.extensions.get(FAILURES) or [answer.status_code]
            wait = float(answer.extensions.get(WAIT) or 0.0)
            return gave_up(self.name, method, url, answer, failures, wait)
        if answer.status_code == 401:
            return AuthorizationRequired(
                f"{self.name}: Graph refused the token: {error_text(answer)}",
                state=AuthState.ERROR,
            )
        if answer.status_code == 403:
            return graph_access.denied(self.caller, error_text(answer), writing=method != "GET")
        return GraphRefused(
            f"{self.name}: Graph {method} {url.split('?')[0]}: HTTP "
            f"{answer.status_code} {error_text(answer)}",
            answer.status_code,
            error_code(answer),
            error_message(answer),
        )

    # --- the source ---------------------------------------------------------------------

    def list_items(self, known: KnownKeys | None = None) -> list[SourceItem]:
        return [item for page in self.list_pages(known) for item in page]

    def list_pages(self, known: KnownKeys | None = None) -> Iterator[list[SourceItem]]:
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
        if total is None or len(seen) >= total:
            return
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
        elif len(seen) > first:
            log.info("graph.listing_completed", mailbox=self.name, found=len(seen) - first)

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
            try:
                body = self._request("GET", url, params=params).json()
            except GraphRefused as exc:
                if exc.status != 400 or params is None or "$expand" not in params:
                    raise
                # Sizes are a saving, not a need: a Graph that refuses the expansion is
                # listed without it, and sizes are known after the download as before.
                log.info("graph.sizes_refused", mailbox=self.name, error=str(exc))
                self._sizes = False
                params.pop("$expand")
                continue
            params = None  # the nextLink carries everything (§3.1)
            url = body.get("@odata.nextLink")
            yield [listed_item(message) for message in body.get("value", [])]

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

    def _ack_one(self, source: dict[str, Any]) -> None:
        url = f"{self.base}/messages/{quote(str(source['id']), safe='')}"
        action = self.settings.after_import
        try:
            if action == AfterImport.MARK_READ:
                self._request("PATCH", url, json={"isRead": True})
            elif action == AfterImport.MOVE:
                target = self.folder_id(self.settings.move_to or "")
                self._request("POST", f"{url}/move", json={"destinationId": target})
            elif action == AfterImport.DELETE:
                self._request("DELETE", url)
        except GraphRefused as exc:
            if exc.status != 404 or exc.code != "ErrorItemNotFound":
                raise
            self._confirm(url, str(source["id"]), exc)

    def _confirm(self, url: str, identifier: str, refused: GraphRefused) -> None:
        """Graph said the message is not there: done only if a GET agrees (gone, or already
        where the action puts it); else the action failed. A 404 has been seen for messages
        that still existed (kellylford/QuickMail#366) and for moves that were done
        (microsoftgraph/msgraph-sdk-php#285): it decides nothing by itself."""
        try:
            answer = self._request("GET", url, params={"$select": "id,parentFolderId,isRead"})
        except GraphRefused as exc:
            if exc.status == 404:
                return  # gone from the mailbox: moved or deleted before
            raise
        message = answer.json()
        action = self.settings.after_import
        where = str(message.get("parentFolderId", ""))
        if action == AfterImport.MARK_READ and message.get("isRead") is True:
            return
        if action == AfterImport.MOVE and where == self.folder_id(self.settings.move_to or ""):
            return
        if action == AfterImport.DELETE and where != self.folder_id(self.settings.folder):
            return
        if where == self.folder_id(self.settings.folder):
            state = f"still in '{self.settings.folder}'"
        else:
            state = "in another folder" + (
                "" if action == AfterImport.MARK_READ else f" than '{self.settings.move_to}'"
            )
        raise SourceError(
            f"{self.name}: Graph answered 404 {refused.code} to {action} of message "
            f"{identifier}, but the message is {state}"
            + (" and unread" if action == AfterImport.MARK_READ else "")
            + "; the action is not recorded as done and is tried again at the next poll"
        )

    def acknowledge(self, sources: Sequence[dict[str, Any]]) -> None:
        if self.settings.after_import == AfterImport.KEEP or not sources:
            return
        if self.settings.after_import == AfterImport.MOVE:
            self.folder_id(self.settings.move_to or "")
        with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
            list(pool.map(self._ack_one, sources))

    def commit(self) -> None:
        return None

    def close(self) -> None:
        self._downloads.close()
        self.client.close()


def _app_only(spec: MailboxSpec) -> bool:
    return spec.oauth is not None and spec.oauth.grant_type is Grant.CLIENT_CREDENTIALS


def build_graph_source(
    spec: MailboxSpec,
    token: TokenProvider,
    renew: Callable[[], str] | None = None,
    *,
    spool: Path | None = None,
    throttle: Book | None = None,
) -> GraphSource:
    if spec.username is None:
        raise ConfigError(
            [f"mailboxes[{spec.name}].username: required for Microsoft Graph (the mailbox to read)"]
        )
    proxy = None
    if spec.proxy is not None and spec.proxy.address:
        proxy = ProxySettings(
            spec.proxy.address,
            spec.proxy.username,
            spec.proxy.password.get_secret_value() if spec.proxy.password else None,
        )
    return GraphSource(
        GraphSettings(
            graph_url=resolve.graph_url(spec),
            mailbox=spec.shared_mailbox or spec.username,
            folder=resolve.folder(spec) or "inbox",
            after_import=resolve.after_import(spec),
            move_to=spec.move_to,
            proxy=proxy,
            spool=spool,
            max_size=resolve.max_message_size(spec),
            user=None if _app_only(spec) else spec.username,
            client_id=spec.oauth.client_id if spec.oauth is not None else None,
        ),
        token,
        spec.name,
        renew,
        throttle,
    )


__all__ = ["GraphRefused", "GraphSettings", "GraphSource", "build_graph_source"]
