"""Microsoft Graph (oauth-facts §3): messages of one folder with ``@odata.nextLink`` paging,
raw MIME from ``$value``, ``Prefer: IdType="ImmutableId"`` on every
request (§3.8), up to four requests at once per mailbox (§3.6, Outlook's limit), 429/503 with
``Retry-After`` honoured, and a 401 answered by renewing the token once."""

from __future__ import annotations

import contextlib
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx2

from mailintake.config import resolve
from mailintake.config.models import MailboxSpec
from mailintake.errors import AuthorizationRequired, NetworkError, RateLimited, SourceError
from mailintake.keys import graph_key
from mailintake.net.http import ProxySettings, build_client, proxy_of, translate
from mailintake.sources.base import KnownKeys, SourceItem, TokenProvider
from mailintake.spool import CHUNK, Body, Spooled, SpoolWriter

PREFER = 'IdType="ImmutableId"'
WELL_KNOWN = frozenset(
    {
        "archive",
        "clutter",
        "conflicts",
        "conversationhistory",
        "deleteditems",
        "drafts",
        "inbox",
        "junkemail",
        "localfailures",
        "msgfolderroot",
        "outbox",
        "recoverableitemsdeletions",
        "scheduled",
        "searchfolders",
        "sentitems",
        "serverfailures",
        "syncissues",
    }
)
CONCURRENCY = 4  # Outlook: four concurrent requests per app and mailbox (§3.6)
PAGE = 200
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
        client: httpx2.Client | None = None,
    ) -> None:
        self.settings = settings
        self.token = token
        self.renew = renew
        self.name = name
        self.client = client or build_client(proxy=settings.proxy)
        self._bearer = ""
        self._lock = threading.Lock()
        # Every request of this mailbox, from any thread, within Outlook's four (§3.6).
        self._slots = threading.BoundedSemaphore(CONCURRENCY)
        self._reduced = False
        self._folder_ids: dict[str, str] = {}
        self._downloads = Downloads(self._download, AHEAD)
        self.base = f"{settings.graph_url.rstrip('/')}/users/{quote(settings.mailbox)}"

    def open(self) -> None:
        self._bearer = self.token()
        if self.settings.after_import == "move":
            # Before anything is imported: a move_to that is not a folder would leave every
            # imported message in place, its move failing poll after poll.
            self.folder_id(self.settings.move_to or "")

    # --- one request, with throttling and token renewal -------------------------------

    def _request(self, method: str, url: str, **kwargs: Any) -> httpx2.Response:
        with self._stream(method, url, **kwargs) as answer:
            answer.read()
        return answer

    @contextlib.contextmanager
    def _stream(self, method: str, url: str, **kwargs: Any) -> Iterator[httpx2.Response]:
        """A successful answer whose body the caller reads; the request keeps its slot until
        then (Outlook counts it until it is complete). Throttling, renewal and errors here."""
        renewed = False
        extra = kwargs.pop("headers", {})
        for attempt in range(self.settings.attempts):
            headers = {"Authorization": f"Bearer {self._bearer}", "Prefer": PREFER, **extra}
            with self._slots:
                try:
                    request = self.client.build_request(method, url, headers=headers, **kwargs)
                    answer = self.client.send(request, stream=True)
                except httpx2.HTTPError as exc:
                    raise translate(
                        exc, f"{self.name}: Graph {method}", proxy_of(self.client)
                    ) from exc
                try:
                    if answer.status_code < 400:
                        yield answer
                        return
                    answer.read()  # an error's body is small: read it to report it
                except httpx2.HTTPError as exc:
                    raise translate(
                        exc, f"{self.name}: Graph {method}", proxy_of(self.client)
                    ) from exc
                finally:
                    answer.close()
            if answer.status_code in (429, 503, 504):
                wait = _retry_after(answer, attempt)
                self._slow_down()
                if attempt + 1 == self.settings.attempts:
                    raise RateLimited(
                        f"{self.name}: Graph kept throttling ({answer.status_code})",
                        retry_after=wait,
                    )
                time.sleep(wait)
                continue
            if answer.status_code == 401 and not renewed and self.renew is not None:
                with self._lock:
                    self._bearer = self.renew()
                renewed = True
                continue
            if answer.status_code == 401:
                raise AuthorizationRequired(
                    f"{self.name}: Graph refused the token: {_graph_error(answer)}", state="error"
                )
            if answer.status_code == 403:
                raise AuthorizationRequired(
                    f"{self.name}: Graph denied access to {self.settings.mailbox}: "
                    f"{_graph_error(answer)} (application permission Mail.ReadWrite, or for a "
                    "shared mailbox Full Access plus Mail.ReadWrite.Shared)",
                    state="error",
                )
            raise SourceError(
                f"{self.name}: Graph {method} {url.split('?')[0]}: HTTP "
                f"{answer.status_code} {_graph_error(answer)}"
            )
        raise RateLimited(f"{self.name}: Graph kept throttling", retry_after=60)

    def _slow_down(self) -> None:
        """After a throttling answer keep one request fewer in flight for this session: the
        server counts a request until it has finished sending it, so four back to back can
        briefly look like five."""
        with self._lock:
            if not self._reduced:
                self._reduced = self._slots.acquire(blocking=False)

    # --- folders ------------------------------------------------------------------------

    def folder_id(self, name: str) -> str:
        """The id of the folder ``name``: a well-known name (inbox, archive…), a display name
        at the top of the mailbox, or a path of display names below one another such as
        ``Inbox/Invoices``."""
        if name.lower() in WELL_KNOWN:
            return name.lower()
        if name in self._folder_ids:
            return self._folder_ids[name]
        found = self._child(None, name)
        if found is None and "/" in name:
            found = self._walk(name)
        if found is None:
            raise self._no_folder(name, None, [])
        self._folder_ids[name] = found
        return found

    def _walk(self, path: str) -> str:
        parent: str | None = None
        above: list[str] = []
        for segment in path.split("/"):
            if parent is None and segment.lower() in WELL_KNOWN:
                child: str | None = segment.lower()
            else:
                child = self._child(parent, segment)
            if child is None:
                raise self._no_folder(segment, parent, above)
            parent = child
            above.append(segment)
        assert parent is not None
        return parent

    def _folders_url(self, parent: str | None) -> str:
        if parent is None:
            return f"{self.base}/mailFolders"
        return f"{self.base}/mailFolders/{quote(parent, safe='')}/childFolders"

    def _child(self, parent: str | None, display_name: str) -> str | None:
        """The id of the folder called ``display_name`` at the top (``parent`` None) or
        below ``parent``."""
        escaped = display_name.replace("'", "''")
        answer = self._request(
            "GET",
            self._folders_url(parent),
            params={"$filter": f"displayName eq '{escaped}'", "$select": "id,displayName"},
        )
        found = answer.json().get("value", [])
        return str(found[0]["id"]) if found else None

    def _no_folder(self, name: str, parent: str | None, above: list[str]) -> SourceError:
        """The folder is not there: say which ones are, to pick the right name."""
        answer = self._request(
            "GET", self._folders_url(parent), params={"$select": "displayName", "$top": "50"}
        )
        names = sorted(str(f.get("displayName", "")) for f in answer.json().get("value", []))
        where = f" in '{'/'.join(above)}'" if above else ""
        there = ", ".join(names[:20]) + (", …" if len(names) > 20 else "") or "none"
        return SourceError(
            f"{self.name}: Graph has no folder named '{name}'{where} in {self.settings.mailbox}; "
            f"the folders there: {there} (a folder below another is written as its path, "
            "for example Inbox/Invoices)"
        )

    # --- the source ---------------------------------------------------------------------

    def list_items(self, known: KnownKeys | None = None) -> list[SourceItem]:
        return [item for page in self.list_pages(known) for item in page]

    def list_pages(self, known: KnownKeys | None = None) -> Iterator[list[SourceItem]]:
        """The folder's messages a page at a time, following ``@odata.nextLink`` (§3.1), so
        that the first pages are imported while the next are listed."""
        folder = self.folder_id(self.settings.folder)
        url: str | None = f"{self.base}/mailFolders/{quote(folder)}/messages"
        params: dict[str, str] | None = {
            "$select": "id,receivedDateTime,internetMessageId",
            "$top": str(PAGE),
        }
        while url:
            body = self._request("GET", url, params=params).json()
            params = None  # the nextLink carries everything (§3.1)
            page: list[SourceItem] = []
            for message in body.get("value", []):
                identifier = str(message["id"])
                received = _date(message.get("receivedDateTime"))
                key = graph_key(identifier)
                page.append(SourceItem(key=key, source={"id": identifier}, received=received))
            url = body.get("@odata.nextLink")
            self._downloads.offer(_unknown(page, known))
            yield page

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

    def fetch(self, items: Sequence[SourceItem]) -> Iterator[tuple[SourceItem, Body]]:
        """Up to four downloads in flight all the time, in listing order, across batches;
        results in order."""
        futures = [self._downloads.claim(item) for item in items]
        for item, future in zip(items, futures, strict=True):
            yield item, future.result()

    def _ack_one(self, source: dict[str, Any]) -> None:
        url = f"{self.base}/messages/{quote(str(source['id']), safe='')}"
        action = self.settings.after_import
        try:
            if action == "mark_read":
                self._request("PATCH", url, json={"isRead": True})
            elif action == "move":
                target = self.folder_id(self.settings.move_to or "")
                self._request("POST", f"{url}/move", json={"destinationId": target})
            elif action == "delete":
                self._request("DELETE", url)
        except SourceError as exc:
            if "ErrorItemNotFound" not in str(exc):  # already moved or deleted: done
                raise

    def acknowledge(self, sources: Sequence[dict[str, Any]]) -> None:
        if self.settings.after_import == "keep" or not sources:
            return
        if self.settings.after_import == "move":
            self.folder_id(self.settings.move_to or "")
        with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
            list(pool.map(self._ack_one, sources))

    def commit(self) -> None:
        return None

    def close(self) -> None:
        self._downloads.close()
        self.client.close()


class Downloads:
    """Message downloads in the order the listing gave them, on CONCURRENCY threads, so the
    request slots stay busy from one batch to the next and while the output writes a batch.
    Once the import has asked for a first message, listed messages are downloaded up to
    ``ahead`` before it asks for them; any other is started when asked for."""

    def __init__(self, download: Callable[[SourceItem], Body], ahead: int) -> None:
        self._download = download
        self._ahead = ahead
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._listed: OrderedDict[str, SourceItem] = OrderedDict()  # not started yet
        self._started: dict[str, Future[Body]] = {}  # not asked for yet

    def offer(self, items: Sequence[SourceItem]) -> None:
        """Listed messages the import is likely to ask for."""
        with self._lock:
            for item in items:
                self._listed[item.key] = item
            self._fill()

    def claim(self, item: SourceItem) -> Future[Body]:
        """The download of ``item``; one listed before it starts first (batches asked for
        from several threads are still downloaded in listing order)."""
        with self._lock:
            if item.key in self._listed:
                self._start_until(item.key)
            future = self._started.pop(item.key, None)
            if future is None:  # not listed here
                future = self._submit(item)
            self._fill()
            return future

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
            unclaimed = list(self._started.values())
            self._started.clear()
            self._listed.clear()
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        for future in unclaimed:
            _discard(future)

    def _fill(self) -> None:
        if self._pool is None:  # the import has not asked for anything yet
            return
        while self._listed and len(self._started) < self._ahead:
            self._start_next()

    def _start_until(self, key: str) -> None:
        while self._start_next() != key:
            pass

    def _start_next(self) -> str:
        key, item = self._listed.popitem(last=False)
        self._started[key] = self._submit(item)
        return key

    def _submit(self, item: SourceItem) -> Future[Body]:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=CONCURRENCY, thread_name_prefix="graph")
        return self._pool.submit(self._download, item)


def _unknown(page: list[SourceItem], known: KnownKeys | None) -> list[SourceItem]:
    if known is None:
        return page
    imported = known([item.key for item in page])
    return [item for item in page if item.key not in imported]


def _discard(future: Future[Body]) -> None:
    """A download nobody asked for: its spool file, if any, is removed."""
    if future.cancelled() or future.exception() is not None:
        return
    body = future.result()
    if isinstance(body, Spooled):
        body.discard()


def _retry_after(answer: httpx2.Response, attempt: int) -> float:
    value = answer.headers.get("retry-after")
    try:
        return max(0.0, min(float(value), 300.0)) if value else min(2.0**attempt, 60.0)
    except ValueError:
        return min(2.0**attempt, 60.0)


def _graph_error(answer: httpx2.Response) -> str:
    try:
        error = answer.json().get("error", {})
        return f"{error.get('code', '')}: {error.get('message', '')}".strip(": ")
    except (ValueError, AttributeError):
        return answer.reason_phrase


def _date(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def build_graph_source(
    spec: MailboxSpec,
    token: TokenProvider,
    renew: Callable[[], str] | None = None,
    *,
    spool: Path | None = None,
) -> GraphSource:
    if spec.username is None:
        raise NetworkError(f"{spec.name}: username required")
    proxy = None
    if spec.proxy is not None and spec.proxy.address:
        proxy = ProxySettings(
            spec.proxy.address,
            spec.proxy.username,
            spec.proxy.password.get_secret_value() if spec.proxy.password else None,
        )
    return GraphSource(
        GraphSettings(
            graph_url=spec.graph_url or resolve.DEFAULT_GRAPH_URL,
            mailbox=spec.shared_mailbox or spec.username,
            folder=resolve.folder(spec) or "inbox",
            after_import=resolve.after_import(spec),
            move_to=spec.move_to,
            proxy=proxy,
            spool=spool,
        ),
        token,
        spec.name,
        renew,
    )


__all__ = ["GraphSettings", "GraphSource", "build_graph_source"]
