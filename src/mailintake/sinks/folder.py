"""The folder output (CONTRACT §5): one directory per message, appearing atomically.

A batch is written under temporary names, made durable with one file-system sync, then
renamed into place, and the parent directories are synced once each; a directory that is
already there from an earlier attempt is kept as it is, so a repeated delivery never makes a
second copy.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import json
import multiprocessing
import os
import select
import shutil
import threading
import uuid
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mailintake.errors import SinkError
from mailintake.mime.parse import safe_filename
from mailintake.sinks.base import Delivery, Receipt

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def sync_filesystem(path: Path) -> None:
    """Flush everything written on the file system holding ``path`` (Linux syncfs)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if getattr(_libc, "syncfs", None) is None or _libc.syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _why(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "the disk is full"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if exc.errno == errno.EROFS:
        return "the file system is read-only"
    return exc.strerror or str(exc)


def write_message(
    folder: Path, delivery: Delivery, imported_at: str
) -> tuple[str | None, str | None]:
    """Write one message's directory (message, attachments, metadata); returns its subject
    and sender. Runs in a worker process for large batches."""
    folder.mkdir(parents=True)
    (folder / "message.eml").write_bytes(delivery.raw)
    parsed = delivery.parsed
    attachments = []
    if parsed.attachments:
        (folder / "attachments").mkdir()
    taken: set[str] = set()
    for index, attachment in enumerate(parsed.attachments, start=1):
        name = safe_filename(attachment.filename, index, taken)
        (folder / "attachments" / name).write_bytes(attachment.data)
        attachments.append(
            {
                "filename": attachment.filename,
                "path": f"attachments/{name}",
                "content_type": attachment.content_type,
                "size": attachment.size,
                "sha256": attachment.sha256,
            }
        )
    metadata = {
        "mailbox": delivery.mailbox,
        "protocol": delivery.protocol,
        "source": delivery.source,
        "internet_message_id": parsed.internet_message_id,
        "subject": parsed.subject,
        "from": parsed.sender,
        "to": parsed.to,
        "cc": parsed.cc,
        "date": parsed.date,
        "size": len(delivery.raw),
        "sha256": delivery.sha256,
        "imported_at": imported_at,
        "attachments": attachments,
    }
    if parsed.defects:
        metadata["defects"] = parsed.defects
    (folder / "metadata.json").write_text(
        json.dumps(metadata, indent=1, ensure_ascii=False), encoding="utf-8"
    )
    return parsed.subject, parsed.sender


def _stage(
    temp: Path, delivery: Delivery, imported_at: str
) -> tuple[str | None, str | None, str | None]:
    """In a worker: write to the temporary name; (error, subject, sender)."""
    try:
        subject, sender = write_message(temp, delivery, imported_at)
    except OSError as exc:
        shutil.rmtree(temp, ignore_errors=True)
        return (_why(exc), None, None)
    return (None, subject, sender)


_POOL: ProcessPoolExecutor | None = None
_POOL_LOCK = threading.Lock()
PARALLEL_FROM = 16  # smaller batches are written here: starting work elsewhere costs more


def _follow(parent: int) -> None:
    """In a worker: end when the importing process ends, even when it was killed (SIGKILL
    runs no clean-up, and a worker would otherwise wait for work for ever)."""

    def wait() -> None:
        try:
            fd = os.pidfd_open(parent)
        except OSError:  # already gone
            os._exit(0)
        select.select([fd], [], [])
        os._exit(0)

    threading.Thread(target=wait, name="follow-parent", daemon=True).start()


def _pool() -> ProcessPoolExecutor | None:
    """Worker processes for reading and writing messages (forkserver: safe with threads)."""
    global _POOL
    workers = min(os.cpu_count() or 1, 8)
    if workers < 2:
        return None
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ProcessPoolExecutor(
                workers,
                mp_context=multiprocessing.get_context("forkserver"),
                initializer=_follow,
                initargs=(os.getpid(),),
            )
        return _POOL


class FolderSink:
    def __init__(self, root: Path, *, now: Any = None) -> None:
        self.root = root
        self._now = now or (lambda: datetime.now(UTC))
        self._cleared: set[Path] = set()

    def _clear_leftovers(self, scratch: Path) -> None:
        """Remove what an attempt that crashed left half-written. The mailbox is leased to one
        worker at a time, so nothing else is writing to its scratch folder."""
        if scratch in self._cleared:
            return
        for leftover in scratch.iterdir():
            shutil.rmtree(leftover, ignore_errors=True)
        self._cleared.add(scratch)

    def target(self, delivery: Delivery) -> Path:
        day = (delivery.received or self._now()).astimezone(UTC).strftime("%Y-%m-%d")
        return self.root / delivery.mailbox / day / delivery.key

    def deliver(self, batch: Sequence[Delivery]) -> list[Receipt | Exception]:
        results: list[Receipt | Exception | None] = [None] * len(batch)
        staged: list[tuple[int, Path, Path]] = []
        to_write: list[tuple[int, Path, Path]] = []
        summaries: dict[int, tuple[str | None, str | None]] = {}
        if not batch:
            return []
        scratch = self.root / ".incoming" / batch[0].mailbox
        try:
            scratch.mkdir(parents=True, exist_ok=True)
            self._clear_leftovers(scratch)
        except OSError as exc:
            error = SinkError(f"output folder {self.root}: cannot be written: {_why(exc)}")
            return [error for _ in batch]
        for index, delivery in enumerate(batch):
            final = self.target(delivery)
            if final.exists():
                results[index] = Receipt(delivery.key, str(final), already=True)
                continue
            temp = scratch / f"{delivery.key}.{uuid.uuid4().hex[:8]}"
            to_write.append((index, temp, final))
        imported_at = self._now().isoformat()
        pool = _pool() if len(to_write) >= PARALLEL_FROM else None
        if pool is not None:
            outcomes = list(
                pool.map(
                    _stage,
                    [t for _, t, _ in to_write],
                    [batch[i] for i, _, _ in to_write],
                    [imported_at] * len(to_write),
                    chunksize=8,
                )
            )
        else:
            outcomes = [_stage(t, batch[i], imported_at) for i, t, _ in to_write]
        for (index, temp, final), (failure, subject, sender) in zip(
            to_write, outcomes, strict=True
        ):
            if failure is not None:
                results[index] = SinkError(
                    f"output folder {self.root}: message {batch[index].key} not written: {failure}"
                )
                continue
            summaries[index] = (subject, sender)
            staged.append((index, temp, final))
        if staged:
            try:
                sync_filesystem(scratch)
            except OSError as exc:
                for index, temp, _final in staged:
                    shutil.rmtree(temp, ignore_errors=True)
                    results[index] = SinkError(f"output folder {self.root}: {_why(exc)}")
                staged = []
        parents: set[Path] = set()
        for index, temp, final in staged:
            try:
                final.parent.mkdir(parents=True, exist_ok=True)
                os.rename(temp, final)
            except OSError as exc:
                shutil.rmtree(temp, ignore_errors=True)
                if final.exists():  # another attempt put it there first
                    results[index] = Receipt(batch[index].key, str(final), already=True)
                else:
                    results[index] = SinkError(
                        f"output folder {self.root}: message {batch[index].key} not placed: "
                        f"{_why(exc)}"
                    )
                continue
            parents.add(final.parent)
            subject, sender = summaries.get(index, (None, None))
            results[index] = Receipt(batch[index].key, str(final), subject=subject, sender=sender)
        try:
            for parent in parents:
                fsync_dir(parent)
                fsync_dir(parent.parent)
        except OSError as exc:
            for index, _temp, _final in staged:
                results[index] = SinkError(f"output folder {self.root}: {_why(exc)}")
        return [r if r is not None else SinkError("not delivered") for r in results]

    def close(self) -> None:
        return None
