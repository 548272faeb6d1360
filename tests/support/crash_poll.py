"""An import pass that kills its own process (SIGKILL) at a chosen point, for the crash tests.

    python -m tests.support.crash_poll MAILBOX [--kill-at STEP:N] [--passes P]
                                       [--webhook-wait SECONDS] [--batch N] [--pause MS]

The real source and output are built as ``mailintake poll`` builds them, then wrapped: the
process is killed when STEP happens for the N-th time (counted over all its passes). With
``--passes`` P passes of the mailbox start at once on P threads (one gets the lease);
``--webhook-wait`` builds a webhook output that waits that long for each answer and tries
twice (a receiver that hangs then fails fast); ``--batch`` makes batches of N messages
instead of the engine's BATCH (more batches in a smaller mailbox). Without ``--kill-at`` it
runs to the end.
Steps:

    list            before the source lists the folder
    fetched         after the N-th message has come from the server
    deliver.before  before the N-th batch goes to the output
    deliver.after   after the N-th batch is in the output, before the store records it
    ack.before      after the N-th batch is recorded, before the after-import action
    ack.after       after the N-th after-import action, before it is marked done
    commit          before the N-th time the source makes the after-import actions final
                    (POP3: QUIT)
    timer           N milliseconds after the pass starts, wherever it is (messages then
                    come ``--pause`` ms apart, 2 unless given, so that the pass is still
                    running when the timer fires)

Settings come from the environment, as for the CLI (MAILINTAKE_HOME, MAILINTAKE_DATABASE_URL).
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx2

from mailintake.config.models import MailboxSpec
from mailintake.engine.factories import build_source
from mailintake.engine.poll import BATCH, BUSY, Poller, PollResult
from mailintake.engine.runtime import ImportRuntime
from mailintake.net.http import build_client
from mailintake.runtime import open_store
from mailintake.settings import Settings
from mailintake.sinks.base import Delivery, MessageSink, PacedSink, Receipt
from mailintake.sinks.webhook import WebhookSink
from mailintake.sources.base import (
    KnownKeys,
    MailSource,
    Resumable,
    Resume,
    SourceItem,
    TokenProvider,
)
from mailintake.store.checkpoints import Checkpoint


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class Killer:
    def __init__(self, step: str, nth: int) -> None:
        self.step, self.nth = step, nth
        self.seen: Counter[str] = Counter()

    def at(self, step: str) -> None:
        self.seen[step] += 1
        if step == self.step and self.seen[step] == self.nth:
            die()


class KillingSource:
    def __init__(self, inner: MailSource, killer: Killer, pause: float) -> None:
        self.inner, self.killer = inner, killer
        self.protocol = inner.protocol
        self.prefetch_safe = inner.prefetch_safe  # as the real one runs
        self.acknowledged_at_commit = inner.acknowledged_at_commit
        self.pause = pause if killer.step == "timer" else 0.0

    def __getattr__(self, name: str) -> Any:
        """What else the real source offers, as it offers it (IMAP: its checkpoint)."""
        return getattr(self.inner, name)

    def open(self) -> None:
        self.inner.open()

    def list_items(self, known: KnownKeys | None = None) -> list[SourceItem]:
        self.killer.at("list")
        return self.inner.list_items(known)

    def list_pages(self, known: KnownKeys | None = None) -> Iterator[list[SourceItem]]:
        for page in self.inner.list_pages(known):
            self.killer.at("list")
            yield page

    def fetch(self, items: Sequence[SourceItem]) -> Iterator[tuple[SourceItem, bytes]]:
        for pair in self.inner.fetch(items):
            self.killer.at("fetched")
            time.sleep(self.pause)
            yield pair

    def acknowledge(self, sources: Sequence[dict[str, Any]]) -> None:
        self.killer.at("ack.before")
        self.inner.acknowledge(sources)
        self.killer.at("ack.after")

    def commit(self) -> None:
        self.killer.at("commit")
        self.inner.commit()

    def close(self) -> None:
        self.inner.close()


class KillingResumableSource(KillingSource):
    """A wrapped source that lists from a checkpoint (IMAP, Graph), and says so by its class:
    from Python 3.12, ``isinstance(source, Resumable)`` looks only at what the class defines
    (``inspect.getattr_static``), not at what ``__getattr__`` would give."""

    def __init__(self, inner: MailSource, killer: Killer, pause: float) -> None:
        super().__init__(inner, killer, pause)
        assert isinstance(inner, Resumable)
        self.resumable = inner

    @property
    def folder(self) -> str:
        return self.resumable.folder

    @property
    def complete(self) -> bool:
        return self.resumable.complete

    @property
    def recreated(self) -> str | None:
        return self.resumable.recreated

    @property
    def matched(self) -> int:
        return self.resumable.matched

    def resume(self, resume: Resume) -> None:
        self.resumable.resume(resume)

    def checkpoint(self, handled: Sequence[SourceItem] | None) -> Checkpoint | None:
        return self.resumable.checkpoint(handled)


class KillingSink:
    def __init__(self, inner: MessageSink, killer: Killer) -> None:
        self.inner, self.killer = inner, killer
        self.overlapping_batches = inner.overlapping_batches  # as it runs
        if isinstance(inner, PacedSink):  # the pass paces it as it paces the real one
            self.pace = inner.pace

    def deliver(self, batch: Sequence[Delivery]) -> list[Receipt | Exception]:
        self.killer.at("deliver.before")
        results = self.inner.deliver(batch)
        self.killer.at("deliver.after")
        return results

    def close(self) -> None:
        self.inner.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mailbox")
    parser.add_argument("--kill-at", default="none:0", help="STEP:N")
    parser.add_argument("--passes", type=int, default=1)
    parser.add_argument("--webhook-wait", type=float, default=None)
    parser.add_argument("--batch", type=int, default=BATCH)
    parser.add_argument("--pause", type=float, default=2.0, help="ms between messages (timer)")
    args = parser.parse_args()
    step, _, nth = str(args.kill_at).partition(":")
    killer = Killer(step, int(nth))
    if step == "timer":
        threading.Timer(int(nth) / 1000, die).start()

    def source(
        spec: MailboxSpec, token: TokenProvider, renew: TokenProvider | None = None, **options: Any
    ) -> Any:
        built = build_source(spec, token, renew, **options)
        wrapper = KillingResumableSource if isinstance(built, Resumable) else KillingSource
        return wrapper(built, killer, args.pause / 1000)

    def sink(output: Any, home: Path) -> Any:
        if args.webhook_wait is not None and output is not None and output.type == "webhook":
            wait = httpx2.Timeout(args.webhook_wait)
            hasty = WebhookSink(
                output.url, attempts=2, backoff=0, client=build_client(timeout=wait)
            )
            return KillingSink(hasty, killer)
        return KillingSink(runtime.build_sink(output, home), killer)

    settings = Settings()
    store = open_store(settings)
    runtime = ImportRuntime().start()  # as the poll command's: the output's writer processes
    poller = Poller(
        store,
        settings.home,
        source_factory=source,
        sink_factory=sink,
        runtime=runtime,
        batch_messages=args.batch,
    )
    start = threading.Barrier(args.passes)
    results: list[PollResult] = []

    def run() -> None:
        start.wait()
        results.append(poller.poll(args.mailbox))

    passes = [threading.Thread(target=run) for _ in range(args.passes)]
    for thread in passes:
        thread.start()
    for thread in passes:
        thread.join()
    for result in results:
        print(result.as_dict(), flush=True)
    ok = all(r.error in (None, BUSY) for r in results) and any(r.error is None for r in results)
    runtime.close()
    os._exit(0 if ok else 4)  # the timer thread must not keep it alive


if __name__ == "__main__":
    main()
