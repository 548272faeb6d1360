"""A pass that goes on from where the last one stopped (a source that is Resumable: IMAP,
and Graph, whose checkpoint is the folder's deltaLink: sources.graph_delta).

Before listing, the source is given the folder's checkpoint and the mailbox's failures
(store.checkpoints). The checkpoint is saved only past what is handled, in the order of the
pass (deliver → record → acknowledge → checkpoint): after each batch, once it is recorded
and acknowledged, it moves to the highest UID of that batch. The engine finishes batches in
the order they were listed (fetched ahead and delivered overlapping, but recorded one after
the other), and what the listing held between two batches was handled when it was screened
(already recorded, or a failure in the list of failures), so every UID at or below the
saved one is recorded, in the list of failures, or gone. A message that failed is not held
back by the checkpoint: it is in the list of failures and tried again from there. Killed
between record and checkpoint, the next pass lists those messages again and skips them as
recorded. When the whole pass is done, the checkpoint moves to the highest UID listed.

Graph's deltaLink says nothing of where in a round a batch stands: it is saved only when the
whole pass is done (``finished``), every message of the round recorded, in the list of
failures, or gone. Killed before that, the next pass goes on from the former deltaLink and
skips what it gives again as recorded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from mailintake.observability.logging import get_logger
from mailintake.sources.base import MailSource, Resumable, Resume, SourceItem
from mailintake.store import checkpoints
from mailintake.store.checkpoints import Checkpoint, Failure
from mailintake.store.repo import Store

if TYPE_CHECKING:
    from mailintake.engine.poll import PollResult

log = get_logger(__name__)


@dataclass
class Position:
    store: Store
    mailbox: str
    source: Resumable
    saved: Checkpoint | None
    failures: Sequence[Failure] = field(default_factory=list)

    @classmethod
    def begin(
        cls, store: Store, mailbox: str, source: MailSource, now: datetime
    ) -> Position | None:
        """Give a Resumable source where the folder stood (None for other sources)."""
        if not isinstance(source, Resumable):
            return None
        with store.read() as repo:
            saved = checkpoints.load(repo.conn, mailbox, source.folder)
            failures = checkpoints.failures(repo.conn, mailbox, now)
        position = cls(store, mailbox, source, saved, failures)
        source.resume(Resume(saved, failures, position.earlier))
        return position

    def earlier(self) -> set[tuple[str, int]]:
        with self.store.read() as repo:
            return checkpoints.earlier_messages(repo.conn, self.mailbox)

    def handled(self, batch: Sequence[SourceItem]) -> None:
        """A batch is recorded and acknowledged: the checkpoint may move past it."""
        self._save(self.source.checkpoint(batch))

    def finished(self, result: PollResult) -> None:
        """The whole pass is done: the checkpoint moves past everything listed. A recreated
        folder is said in the mailbox's status; with nothing listed, the failures that wait
        are counted as a listing would have."""
        self._save(self.source.checkpoint(None))
        if not self.source.complete:
            result.waiting += sum(1 for f in self.failures if not f.due)
        result.skipped += self.source.matched
        if self.source.recreated is not None:
            log.warning("imap.folder_recreated", mailbox=self.mailbox, detail=self.source.recreated)
            result.warnings.append(self.source.recreated)

    def _save(self, checkpoint: Checkpoint | None) -> None:
        if checkpoint is None or checkpoint == self.saved:
            return
        with self.store.begin() as repo:
            checkpoints.save(repo.conn, self.mailbox, checkpoint)
        self.saved = checkpoint


__all__ = ["Position"]
