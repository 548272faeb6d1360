"""Graph's delta query for one folder's messages: a poll costs what is new, not what is kept
(Microsoft Learn, "message: delta", https://learn.microsoft.com/en-us/graph/api/message-delta;
"Get incremental changes to messages in a folder",
https://learn.microsoft.com/en-us/graph/delta-query-messages).

A round is ``GET …/mailFolders/{id}/messages/delta`` and then every ``@odata.nextLink`` until
an answer carries ``@odata.deltaLink``; that link, saved, starts the next round and gives only
what changed since. The query options of the first request (``$select``, ``$expand``,
``changeType``) are encoded in the links, which are followed as given. The first round gives
every message of the folder.

- ``changeType=created``: later rounds give messages new in the folder only, not the ones
  changed there — the after-import action ``mark_read`` would otherwise bring every imported
  message back in the next round ("Example 2: Synchronize messages in a folder based on
  change type"). Graph may still give a message again ("Your application must be prepared
  for replays", delta-query-overview, "Replays"), and a message moved back into the folder
  is new there: every listed message is screened against the import records by its key
  (its immutable id) as before, one query a page.
- ``@removed`` entries (deleted, or moved out of the folder) are left out: what was imported
  stays imported, and a failed message gone from the server fails again until parked.
- A sync state Graph no longer has — ``410 Gone`` ("Synchronization reset"), or the codes
  ``syncStateNotFound`` / ``resyncRequired`` / ``syncStateInvalid`` ("Token duration";
  concepts/errors, "Code property") — is ``lost``: the source then starts a first round
  again, a listing of the whole folder screened by key, and says so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from mailintake.observability.logging import get_logger
from mailintake.sources.base import Resume, SourceItem
from mailintake.sources.graph_answers import GraphRefused
from mailintake.sources.graph_http import PREFER
from mailintake.sources.graph_items import listed_item

log = get_logger(__name__)

# The most messages an answer may hold (``Prefer: odata.maxpagesize``, message-delta's
# "Request headers"); the same modest page as the plain listing's.
PAGE = 100
LOST = frozenset({"syncstatenotfound", "resyncrequired", "syncstateinvalid"})
CHANGES = "created"  # changeType: later rounds give new messages only

# (url, params): the answer's JSON; a refused expansion of sizes is asked again without it.
Page = Callable[[str, dict[str, str] | None, dict[str, str]], dict[str, Any]]


def lost(refused: GraphRefused) -> bool:
    """Whether Graph said the sync state behind a delta or skip token is gone."""
    return refused.status == 410 or refused.code.lower() in LOST


def ours(link: str | None, graph_url: str) -> bool:
    """A saved deltaLink that belongs to this Graph endpoint (a changed ``graph_url`` starts
    over instead of following a link to another service)."""
    if not link:
        return False
    saved, now = urlsplit(link), urlsplit(graph_url)
    return (saved.scheme, saved.netloc) == (now.scheme, now.netloc)


@dataclass
class Round:
    """One round of delta requests, from its first URL (with ``params``) or a deltaLink."""

    page: Page
    url: str
    params: dict[str, str] | None = None
    delta_link: str | None = None  # once the round is complete
    requests: int = 0
    headers: dict[str, str] = field(
        default_factory=lambda: {"Prefer": f"{PREFER}, odata.maxpagesize={PAGE}"}
    )

    def pages(self) -> Iterator[list[dict[str, Any]]]:
        """The messages of each answer (``@removed`` entries left out); empty answers are
        not given. Ends at the deltaLink, or where Graph gave neither link."""
        url: str | None = self.url
        params = self.params
        while url:
            body = self.page(url, params, self.headers)
            self.requests += 1
            params = None  # the links carry everything
            values = [m for m in body.get("value", []) if "@removed" not in m and "id" in m]
            if values:
                yield values
            url = body.get("@odata.nextLink")
            if not url:
                link = body.get("@odata.deltaLink")
                self.delta_link = link if isinstance(link, str) else None


class DeltaListing:
    """What a poll lists from where the folder's import stood (``Resume``): first the failed
    messages whose next try has come (from the store's list of failures, never found by
    listing the folder), then the round from the saved deltaLink — or a first round when
    none is saved, or when Graph lost the sync state (said in ``warnings``). A message is
    given once a pass. ``delta_link`` is set once the round is complete: the checkpoint,
    saved by the engine only when every message of the pass is handled."""

    def __init__(
        self,
        name: str,
        folder: str,
        resume: Resume,
        graph_url: str,
        page: Page,
        first: Callable[[], Round],
        warnings: list[str],
    ) -> None:
        self.name, self.folder, self.resume = name, folder, resume
        self.page, self.first = page, first
        saved = resume.saved
        self.link = saved.cursor if saved is not None and ours(saved.cursor, graph_url) else None
        self.complete = self.link is None  # a first round lists the whole folder
        self.delta_link: str | None = None
        self.warnings = warnings  # said in the poll's result and the mailbox's status
        self.seen: set[str] = set()  # every key given in this pass

    def pages(self) -> Iterator[list[SourceItem]]:
        due = [
            SourceItem(f.key, dict(f.source))
            for f in self.resume.failures
            if f.due and "id" in f.source
        ]
        if due:
            yield self._fresh(due)
        try:
            round_ = Round(self.page, self.link) if self.link else self.first()
            yield from self._round(round_)
        except GraphRefused as exc:
            if self.link is None or not lost(exc):
                raise
            self._lost(exc)
            round_ = self.first()
            yield from self._round(round_)
        self.delta_link = round_.delta_link

    def _round(self, round_: Round) -> Iterator[list[SourceItem]]:
        for values in round_.pages():
            fresh = self._fresh([listed_item(message) for message in values])
            if fresh:
                yield fresh

    def _fresh(self, items: list[SourceItem]) -> list[SourceItem]:
        """Items not given before in this pass (a retried failure, a replay, or what a round
        started again after a lost sync state gives a second time)."""
        fresh = [item for item in items if item.key not in self.seen]
        self.seen.update(item.key for item in fresh)
        return fresh

    def _lost(self, refused: GraphRefused) -> None:
        self.complete = True
        code = refused.code or f"HTTP {refused.status}"
        self.warnings.append(
            f"{self.name}: Graph no longer had the sync state of '{self.folder}' ({code}); the "
            "folder was listed whole and screened against the messages imported before, so "
            "none is imported twice"
        )
        log.warning("graph.sync_state_lost", mailbox=self.name, folder=self.folder, code=code)


__all__ = ["CHANGES", "LOST", "PAGE", "DeltaListing", "Round", "lost", "ours"]
