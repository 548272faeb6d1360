"""Microsoft Graph (oauth-facts §3): messages of one folder with ``@odata.nextLink`` paging,
raw MIME from ``$value``, ``Prefer: IdType="ImmutableId"`` on every
request (§3.8), up to four requests at once per mailbox (§3.6, Outlook's limit), 429/503 with
``Retry-After`` honoured, and a 401 answered by renewing the token once."""

from __future__ import annotations

import contextlib
import hashlib
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx2

from mailintake.config import resolve
from mailintake.config.models import MailboxSpec
from mailintake.errors import AuthorizationRequired, NetworkError, RateLimited, SourceError
from mailintake.net.http import ProxySettings, build_client, proxy_of, translate
from mailintake.sources.base import KnownKeys, SourceItem, TokenProvider
from mailintake.spool import CHUNK, Body, SpoolWriter

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
        self.base = f"{settings.graph_url.rstrip('/')}/users/{quote(settings.mailbox)}"

    def open(self) -> None:
        self._bearer = self.token()

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
        if name.lower() in WELL_KNOWN:
            return name.lower()
        if name in self._folder_ids:
            return self._folder_ids[name]
        escaped = name.replace("'", "''")
        answer = self._request(
            "GET",
            f"{self.base}/mailFolders",
            params={"$filter": f"displayName eq '{escaped}'", "$select": "id,displayName"},
        )
        found = answer.json().get("value", [])
        if not found:
            raise SourceError(
                f"{self.name}: Graph has no folder named '{name}' in {self.settings.mailbox}"
            )
        self._folder_ids[name] = str(found[0]["id"])
        return self._folder_ids[name]

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
                digest = hashlib.sha256(identifier.encode()).hexdigest()[:40]
                page.append(
                    SourceItem(key=f"graph-{digest}", source={"id": identifier}, received=received)
                )
            url = body.get("@odata.nextLink")
            yield page

    def _download(self, item: SourceItem) -> Body:
        """The raw MIME (§3.3), streamed: a large message goes to a spool file as it arrives."""
        url = f"{self.base}/messages/{quote(item.source['id'], safe='')}/$value"
        writer = SpoolWriter(self.settings.spool or Path(tempfile.gettempdir()) / "mailintake")
        try:
            with self._stream("GET", url) as answer:
                for block in answer.iter_bytes(CHUNK):
                    writer.write(block)
        except BaseException:
            writer.abandon()
            raise
        return writer.finish()

    def fetch(self, items: Sequence[SourceItem]) -> Iterator[tuple[SourceItem, Body]]:
        """Up to four downloads in flight all the time; results in order."""
        with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
            yield from zip(items, pool.map(self._download, items), strict=True)

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

    def close(self) -> None:
        self.client.close()


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
