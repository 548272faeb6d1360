"""The folder output (CONTRACT §5): one directory per message, appearing atomically.

A batch is written under temporary names (sinks/writers.py), made durable with one
file-system sync, then renamed into place, and the parent directories are synced once each;
a directory that is already there from an earlier attempt is kept as it is, so a repeated
delivery never makes a second copy. Nothing is removed or renamed outside the mailbox's own
scratch folder and its own folder (``Scope``).
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mailintake.errors import SinkError
from mailintake.keys import former_keys
from mailintake.sinks.base import Delivery, Receipt
from mailintake.sinks.writer_pool import WriterPool
from mailintake.sinks.writers import (
    PARALLEL_FROM,
    PARALLEL_UP_TO,
    Outcome,
    Summary,
    forget,
    fsync_dir,
    hand_over,
    read_file,
    stage,
    sync_filesystem,
    why,
)


def _place(temp: str, final: str) -> None:
    """Rename into place; the day's folder is made when it is not there (yet, or any more:
    whatever reads the output may have removed it)."""
    try:
        os.rename(temp, final)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(final), exist_ok=True)
        os.rename(temp, final)


def unsafe_name(name: str) -> str | None:
    """Why ``name`` cannot be one folder's name inside the output (a mailbox, a day, a
    message key), or None: it must name one entry below its parent, never the parent itself
    or a hidden entry such as the output's own ``.incoming``."""
    if not name:
        return "is empty"
    if name.startswith("."):
        return "starts with a dot"
    if "/" in name or "\\" in name or "\0" in name:
        return "holds a path separator"
    return None


class Scope:
    """The only places one mailbox's batch may remove or rename anything: its own scratch
    folder ``<output>/.incoming/<mailbox>`` and its own folder ``<output>/<mailbox>``.
    Both are resolved (symbolic links followed) and must be exactly where their names
    say; every path removed or renamed is one safe name below one of them."""

    def __init__(self, root: str, mailbox: str) -> None:
        why = unsafe_name(mailbox)
        if why is not None:
            raise SinkError(f"output folder {root}: mailbox name {mailbox!r} {why}")
        self.root = root
        self.mailbox = mailbox
        real = os.path.realpath(root)
        self.scratch = f"{root}/.incoming/{mailbox}"
        self.folder = f"{root}/{mailbox}"
        os.makedirs(self.scratch, exist_ok=True)
        self._real_folder = f"{real}/{mailbox}"
        self._check(self.scratch, f"{real}/.incoming/{mailbox}", "its scratch folder")
        self._check(self.folder, self._real_folder, "its folder")
        self._days: set[str] = set()

    def _check(self, path: str, expected: str, what: str) -> None:
        resolved = os.path.realpath(path)
        if resolved != expected:
            raise SinkError(
                f"output folder {self.root}: {path} resolves to {resolved}, not to mailbox "
                f"{self.mailbox}'s own {what} ({expected}): nothing is removed or renamed there"
            )

    def temp(self, key: str, attempt: str) -> str:
        """A message's temporary name in the scratch folder."""
        self._check_key(key)
        return f"{self.scratch}/{key}.{attempt}"

    def final(self, day: str, key: str) -> str:
        """Where a message's folder goes: ``<output>/<mailbox>/<day>/<key>``."""
        self._check_key(key)
        if day not in self._days:
            why = unsafe_name(day)
            if why is not None:
                raise SinkError(f"output folder {self.root}: day {day!r} {why}")
            self._check(f"{self.folder}/{day}", f"{self._real_folder}/{day}", "day folder")
            self._days.add(day)
        return f"{self.folder}/{day}/{key}"

    def _check_key(self, key: str) -> None:
        why = unsafe_name(key)
        if why is not None:
            raise SinkError(f"output folder {self.root}: message key {key!r} {why}")

    def leftovers(self) -> list[str]:
        """What is in the scratch folder: each entry one name below it."""
        return [f"{self.scratch}/{name}" for name in os.listdir(self.scratch)]


def _holds(folder: str, delivery: Delivery) -> bool | None:
    """Whether the message folder there holds this message, as its metadata.json's
    ``source`` says; None when that cannot be told (no folder, or whatever reads the output
    has taken its metadata.json)."""
    try:
        written = json.loads(read_file(f"{folder}/metadata.json"))
    except (OSError, ValueError):
        return None
    source = written.get("source") if isinstance(written, dict) else None
    if not isinstance(source, dict):
        return None
    common = source.keys() & delivery.source.keys()
    if not common:
        return None
    return all(source[name] == delivery.source[name] for name in common)


def _already(root: Path, folder: str, delivery: Delivery) -> Receipt | SinkError:
    """The message's folder is there: from an earlier attempt (a repeated delivery makes no
    second copy), unless it holds another message; that one is never taken for this one."""
    if _holds(folder, delivery) is False:
        return SinkError(
            f"output folder {root}: message {delivery.key}: {folder} holds another message, "
            f"not the one with source {delivery.source} (does the output's file system not "
            "tell upper from lower case?); it stays on the server"
        )
    return Receipt(delivery.key, folder, already=True)


def _earlier_copy(scope: Scope, day: str, delivery: Delivery) -> str | None:
    """The folder of this message placed by an earlier version under the key it gave the
    message then (mailintake.keys.former_keys), if any: a delivery repeated after an
    upgrade makes no second copy. Several messages may have shared that key: the folder is
    this message's only when its metadata.json names the same source."""
    for key in former_keys(delivery.source):
        folder = scope.final(day, key)
        if _holds(folder, delivery):
            return folder
    return None


class FolderSink:
    # Three batches may be delivered at once: the workers write one while another is made
    # durable and renamed into place, and the store records a third (why three, not two or
    # four: docs/importing.md, "Speed").
    overlapping_batches = 3

    def __init__(self, root: Path, *, now: Any = None, writers: WriterPool | None = None) -> None:
        """``writers``: the worker processes that write most of a large batch, owned by the
        caller (engine.runtime.ImportRuntime); without them, this process writes everything."""
        self.root = root
        self._writers = writers
        self._base = os.fspath(root)
        self._now = now or (lambda: datetime.now(UTC))
        self._cleared: set[str] = set()
        self._clearing = threading.Lock()

    def expect(self, count: int) -> None:
        """A batch of ``count`` messages is on its way: when it is large enough for the
        writer processes, they start now, in the background, while it is fetched."""
        if self._writers is not None and count >= PARALLEL_FROM:
            self._writers.warm()

    def _clear_leftovers(self, scope: Scope) -> None:
        """Remove what an attempt that crashed left half-written, before this pass writes
        there. The mailbox is leased to one worker at a time, so nothing else is writing to
        its scratch folder."""
        with self._clearing:
            if scope.scratch in self._cleared:
                return
            for leftover in scope.leftovers():
                shutil.rmtree(leftover, ignore_errors=True)
            self._cleared.add(scope.scratch)

    def _day(self, delivery: Delivery) -> str:
        return (delivery.received or self._now()).astimezone(UTC).strftime("%Y-%m-%d")

    def target(self, delivery: Delivery) -> str:
        """Where the message's folder goes (a plain string: this runs for every message)."""
        return f"{self._base}/{delivery.mailbox}/{self._day(delivery)}/{delivery.key}"

    def deliver(self, batch: Sequence[Delivery]) -> list[Receipt | Exception]:
        results: list[Receipt | Exception | None] = [None] * len(batch)
        staged: list[tuple[int, str, str]] = []  # (index in the batch, temporary, final)
        to_write: list[tuple[int, str, str]] = []
        summaries: dict[int, Summary] = {}
        if not batch:
            return []
        mailbox = batch[0].mailbox
        try:
            scope = Scope(self._base, mailbox)
            self._clear_leftovers(scope)
        except SinkError as exc:
            return [exc for _ in batch]
        except OSError as exc:
            error = SinkError(f"output folder {self.root}: cannot be written: {why(exc)}")
            return [error for _ in batch]
        scratch = Path(scope.scratch)
        attempt = uuid.uuid4().hex[:8]
        for index, delivery in enumerate(batch):
            try:
                if delivery.mailbox != mailbox:
                    raise SinkError(
                        f"output folder {self.root}: message {delivery.key!r} of mailbox "
                        f"{delivery.mailbox!r} in a batch of mailbox {mailbox!r}"
                    )
                day = self._day(delivery)
                final = scope.final(day, delivery.key)
                temp = scope.temp(delivery.key, attempt)
                if os.path.exists(final):
                    results[index] = _already(self.root, final, delivery)
                    continue
                earlier = _earlier_copy(scope, day, delivery)
            except SinkError as exc:
                results[index] = exc
                continue
            except OSError as exc:
                results[index] = SinkError(f"output folder {self.root}: {why(exc)}")
                continue
            if earlier is not None:
                results[index] = Receipt(delivery.key, earlier, already=True)
                continue
            to_write.append((index, temp, final))
        imported_at = self._now().isoformat()
        # Large messages are written here: sending them to a worker would copy them.
        small = [w for w in to_write if isinstance(batch[w[0]].raw, bytes)]
        small = [w for w in small if batch[w[0]].size <= PARALLEL_UP_TO]
        workers = None
        if self._writers is not None and len(small) >= PARALLEL_FROM:
            workers = self._writers.get()
        outcomes: dict[int, Outcome] = {}
        if workers is not None:
            outcomes = hand_over(workers, batch, small, imported_at)
        for index, temp, _final in to_write:
            if index not in outcomes:
                outcomes[index] = stage(temp, batch[index], imported_at)
        for index, temp, final in to_write:
            failure, summary = outcomes[index]
            if failure is not None:
                results[index] = SinkError(
                    f"output folder {self.root}: message {batch[index].key} not written: {failure}"
                )
                continue
            if summary is not None:
                summaries[index] = summary
            staged.append((index, temp, final))
        if staged:
            try:
                sync_filesystem(scratch)
            except OSError as exc:
                for index, temp, _final in staged:
                    shutil.rmtree(temp, ignore_errors=True)
                    results[index] = SinkError(f"output folder {self.root}: {why(exc)}")
                staged = []
        parents: set[str] = set()
        placed: list[str] = []  # the files now in place
        for index, temp, final in staged:
            try:
                _place(temp, final)
            except OSError as exc:
                shutil.rmtree(temp, ignore_errors=True)
                if os.path.exists(final):  # another attempt put it there first
                    results[index] = _already(self.root, final, batch[index])
                else:
                    results[index] = SinkError(
                        f"output folder {self.root}: message {batch[index].key} not placed: "
                        f"{why(exc)}"
                    )
                continue
            parents.add(os.path.dirname(final))
            subject, sender, sha256, files, message_id = summaries[index]
            placed.extend(f"{final}/{name}" for name in files)
            results[index] = Receipt(
                batch[index].key,
                final,
                subject=subject,
                sender=sender,
                sha256=sha256,
                message_id=message_id,
            )
        try:
            for parent in parents:
                fsync_dir(parent)
                fsync_dir(os.path.dirname(parent))
        except OSError as exc:
            for index, _temp, _final in staged:
                results[index] = SinkError(f"output folder {self.root}: {why(exc)}")
        if workers is None:
            forget(placed)
        else:
            try:
                workers.submit(forget, placed)  # not waited for: only memory is at stake
            except RuntimeError:  # the pool broke or shut down meanwhile
                forget(placed)
        return [r if r is not None else SinkError("not delivered") for r in results]

    def close(self) -> None:
        """Nothing to release: the writers belong to whoever passed them in."""
