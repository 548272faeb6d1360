"""How a pass's messages travel from the server to the output: pipelined, or one at a time.

Both take the same steps of the contract (engine.poll): the messages the store does not know
yet, screened (``wanted``); a batch fetched, screened again (``screen``: over the size limit,
not given by the server) and delivered; then ``finish``: record → acknowledge → mark
acknowledged, and the checkpoint. Only the order in which batches overlap differs:

- ``pipelined`` (what passes use): the next batches are fetched while this one is delivered
  (a source whose requests may overlap, Graph), and the output writes the next batch while
  this one is made durable, recorded and acknowledged (the folder output), so its writers
  never wait for the store or the server. Each batch still goes deliver → record →
  acknowledge, in order.
- ``sequential``: one message at a time, each fetched, delivered, recorded and acknowledged
  before the next is fetched. It is the reference the pipelined pass is checked against
  (same output, same records), and the plainest reading of the contract.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from mailintake.engine.batches import Statuses, Writing, batches, fetched_batches
from mailintake.engine.checkpoint import Position
from mailintake.engine.guard import PassGuard
from mailintake.engine.outcome import PollResult
from mailintake.engine.retries import Retries
from mailintake.sinks.base import Delivery, MessageSink, PreparingSink, Receipt
from mailintake.sources.base import Fetched, MailSource, SourceItem
from mailintake.store.repo import Store


@dataclass
class Pass:
    """One pass's parts, and what it has to finish."""

    name: str
    owner: str
    protocol: str
    limit: int  # max_message_size
    result: PollResult
    guard: PassGuard
    source: MailSource
    sink: MessageSink
    paced: bool  # the output asks the guard before each message
    retries: Retries  # when a message that failed on its own is tried again
    now: datetime  # when the pass began: what back-off is counted from
    # Acknowledged on the server, final at the source's commit: marked after it.
    unconfirmed: list[str] = field(default_factory=list)
    # Marked acknowledged, still listed by a source whose action removes them: done again.
    stale: list[SourceItem] = field(default_factory=list)
    listed: set[str] = field(default_factory=set)  # every key the source listed
    position: Position | None = None  # where a source that lists from a checkpoint stands


class PassSteps(Protocol):
    """The contract's steps, which a pass's messages go through in order (engine.poll)."""

    store: Store
    batch_bytes: int
    batch_messages: int

    def wanted(self, run: Pass, statuses: Statuses, counted: list[int]) -> Iterator[SourceItem]:
        """What to import, as the source lists it; ``counted[0]``: how many so far."""
        ...

    def screen(
        self, run: Pass, fetched: list[tuple[SourceItem, Fetched]]
    ) -> tuple[list[Delivery], list[Delivery], list[str]]:
        """The deliveries, those over the size limit, the keys the server could not give."""
        ...

    def finish(self, run: Pass, writing: Writing, total: int) -> None:
        """A delivered batch: record → acknowledge → mark acknowledged."""
        ...


Importer = Callable[[PassSteps, Pass], None]


def _statuses(steps: PassSteps, run: Pass) -> Statuses:
    return Statuses(
        steps.store,
        run.name,
        run.now,
        acknowledged_listed=run.source.acknowledged_at_commit,
        whole_listing=getattr(run.source, "lists_whole_mailbox", False),
    )


def pipelined(steps: PassSteps, run: Pass) -> None:
    """Batches fetched ahead and delivered while the one before is recorded (see above)."""
    counted = [0]  # messages to import found so far: the progress bar's total
    todo = steps.wanted(run, _statuses(steps, run), counted)
    overlap = max(1, run.sink.overlapping_batches)
    writing: deque[Writing] = deque()
    with ThreadPoolExecutor(max_workers=overlap, thread_name_prefix="deliver") as writers:
        try:
            planned = _announced(run.sink, batches(todo, steps.batch_bytes, steps.batch_messages))
            for start, batch, fetched in fetched_batches(run.source, planned):
                run.guard.check()  # before another batch goes out
                deliveries, oversized, unavailable = steps.screen(run, fetched)
                future = writers.submit(run.sink.deliver, deliveries) if deliveries else None
                writing.append(Writing(start, batch, deliveries, oversized, future, unavailable))
                while len(writing) >= overlap:
                    steps.finish(run, writing.popleft(), counted[0])
            while writing:
                steps.finish(run, writing.popleft(), counted[0])
        finally:
            for abandoned in writing:  # an error stopped the pass: their files still go
                abandoned.wait()
                abandoned.discard()


def _announced(
    sink: MessageSink, planned: Iterator[tuple[int, list[SourceItem]]]
) -> Iterator[tuple[int, list[SourceItem]]]:
    """The batches, each announced to an output that prepares for them (PreparingSink)
    before it is fetched."""
    if not isinstance(sink, PreparingSink):
        yield from planned
        return
    for start, batch in planned:
        sink.expect(len(batch))
        yield start, batch


def sequential(steps: PassSteps, run: Pass) -> None:
    """One message at a time: fetched, delivered, recorded, acknowledged, then the next."""
    counted = [0]
    for start, item in enumerate(steps.wanted(run, _statuses(steps, run), counted)):
        run.guard.check()
        deliveries, oversized, unavailable = steps.screen(run, list(run.source.fetch([item])))
        delivered: Future[list[Receipt | Exception]] | None = None
        if deliveries:
            delivered = Future()
            delivered.set_result(run.sink.deliver(deliveries))
        steps.finish(
            run, Writing(start, [item], deliveries, oversized, delivered, unavailable), counted[0]
        )
