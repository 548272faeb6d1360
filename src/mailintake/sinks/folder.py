"""The folder output (CONTRACT §5): one directory per message, appearing atomically.

A batch is written under temporary names, made durable with one file-system sync, then
renamed into place, and the parent directories are synced once each; a directory that is
already there from an earlier attempt is kept as it is, so a repeated delivery never makes a
second copy.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import ctypes
import ctypes.util
import errno
import gc
import hashlib
import json
import multiprocessing
import os
import select
import shutil
import sys
import threading
import types
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mailintake.errors import SinkError
from mailintake.keys import former_keys
from mailintake.mime.parse import safe_filename
from mailintake.sinks.base import Delivery, Receipt, metadata
from mailintake.spool import Body, copy_to

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def sync_filesystem(path: Path) -> None:
    """Flush everything written on the file system holding ``path`` (Linux syncfs)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if getattr(_libc, "syncfs", None) is None or _libc.syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


def fsync_dir(path: Path | str) -> None:
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


# What the import records of a message (subject, sender, sha256), and the files written
# (relative to its folder).
Summary = tuple[str | None, str | None, str, list[str]]


def write_message(
    folder: Path | str, delivery: Delivery, imported_at: str, *, begun: bool = False
) -> Summary:
    """Write one message's directory (message, attachments, metadata); returns what the
    import records of it, read here once. Runs in a worker process for large batches.
    ``begun``: the directory and message.eml are there already (see ``begin``)."""
    base = os.fspath(folder)  # plain strings: this runs for every message
    if not begun:
        begin(base, delivery.raw)
    parsed = delivery.parsed
    attachments = []
    if parsed.attachments:
        os.mkdir(f"{base}/attachments")
    taken: set[str] = set()
    files = ["message.eml", "metadata.json"]
    for index, attachment in enumerate(parsed.attachments, start=1):
        name = safe_filename(attachment.filename, index, taken)
        size, digest = 0, hashlib.sha256()
        with open(f"{base}/attachments/{name}", "wb") as file:
            for piece in attachment.chunks():  # decoded piece by piece: large ones too
                file.write(piece)
                size += len(piece)
                digest.update(piece)
        files.append(f"attachments/{name}")
        attachments.append(
            {
                "filename": attachment.filename,
                "path": f"attachments/{name}",
                "content_type": attachment.content_type,
                "size": size,
                "sha256": digest.hexdigest(),
            }
        )
    document = metadata(delivery, imported_at, attachments)
    _write_file(f"{base}/metadata.json", _json(document).encode("utf-8"))
    return parsed.subject, parsed.sender, delivery.sha256, files


def begin(folder: str, raw: Body) -> None:
    """Make the message's directory and write the server's bytes into it."""
    os.mkdir(folder)
    if isinstance(raw, bytes):
        _write_file(f"{folder}/message.eml", raw)
        return
    with open(f"{folder}/message.eml", "wb") as file:
        copy_to(raw, file)


_WRITE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC


def _write_file(path: str, data: bytes) -> None:
    """A new file with these bytes (``open()`` adds three system calls and two objects: this
    runs several times for every message)."""
    fd = os.open(path, _WRITE, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def _read_file(path: str) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        size = os.fstat(fd).st_size
        data = os.read(fd, size)
        while len(data) < size:  # a read may return less than asked
            more = os.read(fd, size - len(data))
            if not more:
                break
            data += more
        return data
    finally:
        os.close(fd)


_encode = json.JSONEncoder(ensure_ascii=False).encode


def _json(document: dict[str, Any]) -> str:
    """One field per line, each value compact: readable, and written by the C encoder (an
    ``indent`` makes ``json`` use its pure-Python encoder, several times slower)."""
    fields = (f"{_encode(k)}: {_encode(v)}" for k, v in document.items())
    return "{\n " + ",\n ".join(fields) + "\n}\n"


Outcome = tuple[str | None, Summary | None]  # (why it failed, or what was written)


def _stage(
    temp: Path | str, delivery: Delivery, imported_at: str, *, begun: bool = False
) -> Outcome:
    """Write to the temporary name. ``begun``: the importing process has written
    message.eml already; it is read back from the page cache."""
    try:
        if begun:
            delivery = replace(delivery, raw=_read_file(f"{temp}/message.eml"))
        summary = write_message(temp, delivery, imported_at, begun=begun)
    except OSError as exc:
        return _abandon(temp, exc)
    return (None, summary)


def _abandon(temp: Path | str, exc: OSError) -> Outcome:
    """Remove what was written of a message that could not be, and say why."""
    shutil.rmtree(temp, ignore_errors=True)
    return (_why(exc), None)


def _finish_staging(work: list[tuple[str, Delivery]], imported_at: str) -> list[Outcome]:
    """In a worker: complete messages whose message.eml the importing process has written
    (it had the bytes; sending them here would copy them twice more)."""
    return [_stage(temp, delivery, imported_at, begun=True) for temp, delivery in work]


_POOL: ProcessPoolExecutor | None = None
_POOL_LOCK = threading.Lock()
_STARTED = False
_STARTER: threading.Thread | None = None
_MAIN_SWAP = threading.Lock()
PARALLEL_FROM = 16  # smaller batches are written here: starting work elsewhere costs more
PARALLEL_UP_TO = 4 << 20  # larger messages are written here, not copied to a worker


def _start_worker(parent: int) -> None:
    """In a worker: collect cyclic garbage rarely (reading a message makes many short-lived
    objects, freed as they go), and follow the importing process."""
    gc.set_threshold(50_000, 20, 20)
    _follow(parent)


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


def _workers() -> int:
    return min(os.cpu_count() or 1, 8)


def _pool() -> ProcessPoolExecutor | None:
    """Worker processes for reading and writing messages (forkserver: safe with threads)."""
    global _POOL
    workers = _workers()
    if workers < 2:
        return None
    with _POOL_LOCK:
        if _POOL is None:
            context = multiprocessing.get_context("forkserver")
            # The server the workers are forked from loads this module once for all of them.
            context.set_forkserver_preload([__name__])
            _POOL = ProcessPoolExecutor(
                workers,
                mp_context=context,
                initializer=_start_worker,
                initargs=(os.getpid(),),
            )
        return _POOL


def _ready() -> None:
    return None


def start_writers() -> None:
    """Start the worker processes in the background (it takes a tenth of a second or more),
    so that they are ready when the first batch has arrived; once per process. Wait for
    ``writers_started`` before using the pool or ending the program."""
    global _STARTED, _STARTER
    with _POOL_LOCK:
        if _STARTED:
            return
        _STARTED = True
        _STARTER = threading.Thread(target=_start, name="start-writers", daemon=True)
        _STARTER.start()


def _start() -> None:
    pool = _pool()
    if pool is None:
        return
    with _without_main():  # the processes start here, one per submission
        started = [pool.submit(_ready) for _ in range(_workers())]
    # Until a process has read what it was started with, the program must not end (the
    # process would find it gone). A pool that broke meanwhile is reported by its first use.
    concurrent.futures.wait(started)


def writers_started() -> None:
    """Wait until the background start is over. A worker process that started while the
    pool was shutting down (the program ending) would never be told to stop, and the
    program would wait for it for ever."""
    starter = _STARTER
    if starter is not None:
        starter.join()


@contextlib.contextmanager
def _without_main() -> Iterator[None]:
    """Start worker processes without the program's main module. multiprocessing would run
    it again in each worker (for ``mailintake``, the whole command line with everything it
    loads: about a second of CPU per worker, at the start of an import); they need only
    this module."""
    with _MAIN_SWAP:
        main = sys.modules["__main__"]
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            yield
        finally:
            sys.modules["__main__"] = main


def forget(files: Sequence[str]) -> None:
    """Tell the kernel it need not keep in memory what these message folders hold: they
    are on disk, and the import does not read them again. An import writes far more than it
    will read back soon; kept cached, it would push out what the machine's other programs
    use, and every batch would need memory the kernel has not handed out yet (on virtual
    machines that give unused memory back to their host, each such page costs a fault on
    the host: measured at 3-10 times the cost of writing the message itself)."""
    for path in files:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            continue  # moved or removed meanwhile by whatever reads the output
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        except OSError:
            pass
        finally:
            os.close(fd)


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


def _earlier_copy(scope: Scope, day: str, delivery: Delivery) -> str | None:
    """The folder of this message placed by an earlier version under the key it gave the
    message then (mailintake.keys.former_keys), if any: a delivery repeated after an
    upgrade makes no second copy. Several messages may have shared that key: the folder is
    this message's only when its metadata.json names the same source."""
    for key in former_keys(delivery.source):
        folder = scope.final(day, key)
        try:
            written = json.loads(_read_file(f"{folder}/metadata.json"))
        except (OSError, ValueError):
            continue
        if isinstance(written, dict) and written.get("source") == delivery.source:
            return folder
    return None


class FolderSink:
    # Three batches may be delivered at once: the workers write one while another is made
    # durable and renamed into place, and the store records a third (measured: 10 % more
    # messages per second than two, no gain from four).
    overlapping_batches = 3

    def __init__(self, root: Path, *, now: Any = None) -> None:
        self.root = root
        self._base = os.fspath(root)
        self._now = now or (lambda: datetime.now(UTC))
        self._cleared: set[str] = set()
        self._clearing = threading.Lock()
        start_writers()

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
            error = SinkError(f"output folder {self.root}: cannot be written: {_why(exc)}")
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
                    results[index] = Receipt(delivery.key, final, already=True)
                    continue
                earlier = _earlier_copy(scope, day, delivery)
            except SinkError as exc:
                results[index] = exc
                continue
            except OSError as exc:
                results[index] = SinkError(f"output folder {self.root}: {_why(exc)}")
                continue
            if earlier is not None:
                results[index] = Receipt(delivery.key, earlier, already=True)
                continue
            to_write.append((index, temp, final))
        imported_at = self._now().isoformat()
        # Large messages are written here: sending them to a worker would copy them.
        small = [w for w in to_write if isinstance(batch[w[0]].raw, bytes)]
        small = [w for w in small if batch[w[0]].size <= PARALLEL_UP_TO]
        writers_started()
        pool = _pool() if len(small) >= PARALLEL_FROM else None
        outcomes: dict[int, Outcome] = {}
        if pool is not None:
            outcomes = self._hand_over(pool, batch, small, imported_at)
        for index, temp, _final in to_write:
            if index not in outcomes:
                outcomes[index] = _stage(temp, batch[index], imported_at)
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
                    results[index] = SinkError(f"output folder {self.root}: {_why(exc)}")
                staged = []
        parents: set[str] = set()
        placed: list[str] = []  # the files now in place
        for index, temp, final in staged:
            try:
                _place(temp, final)
            except OSError as exc:
                shutil.rmtree(temp, ignore_errors=True)
                if os.path.exists(final):  # another attempt put it there first
                    results[index] = Receipt(batch[index].key, final, already=True)
                else:
                    results[index] = SinkError(
                        f"output folder {self.root}: message {batch[index].key} not placed: "
                        f"{_why(exc)}"
                    )
                continue
            parents.add(os.path.dirname(final))
            subject, sender, sha256, files = summaries[index]
            placed.extend(f"{final}/{name}" for name in files)
            results[index] = Receipt(
                batch[index].key, final, subject=subject, sender=sender, sha256=sha256
            )
        try:
            for parent in parents:
                fsync_dir(parent)
                fsync_dir(os.path.dirname(parent))
        except OSError as exc:
            for index, _temp, _final in staged:
                results[index] = SinkError(f"output folder {self.root}: {_why(exc)}")
        if pool is None:
            forget(placed)
        else:
            try:
                pool.submit(forget, placed)  # not waited for: only memory is at stake
            except RuntimeError:  # the pool broke or shut down meanwhile
                forget(placed)
        return [r if r is not None else SinkError("not delivered") for r in results]

    @staticmethod
    def _hand_over(
        pool: ProcessPoolExecutor,
        batch: Sequence[Delivery],
        work: list[tuple[int, str, str]],
        imported_at: str,
    ) -> dict[int, Outcome]:
        """Write each message's bytes here, and have the workers do the rest, a share of
        the batch at a time (they start on the first share while this writes the next)."""
        outcomes: dict[int, Outcome] = {}
        share = max(1, -(-len(work) // (2 * _workers())))
        pending: list[tuple[list[int], Future[list[Outcome]]]] = []
        for start in range(0, len(work), share):
            indexes, handed = [], []
            for index, temp, _final in work[start : start + share]:
                delivery = batch[index]
                try:
                    begin(temp, delivery.raw)
                except OSError as exc:
                    outcomes[index] = _abandon(temp, exc)
                    continue
                indexes.append(index)
                handed.append((temp, replace(delivery, raw=b"")))
            if handed:
                pending.append((indexes, pool.submit(_finish_staging, handed, imported_at)))
        for indexes, future in pending:
            outcomes.update(zip(indexes, future.result(), strict=True))
        return outcomes

    def close(self) -> None:
        writers_started()
