"""The folder output's writers: the system calls that write a message's directory and make
it durable, and what the worker processes (sinks/writer_pool.py) run of a large batch.

The importing process writes each message's bytes (it has them); the workers read them back
from the page cache and write the attachments and metadata (``hand_over``). A batch under
``PARALLEL_FROM`` messages, and a message over ``PARALLEL_UP_TO`` bytes, is written in the
importing process: handing it over would cost more. Where the output's directories go and
how they are placed is sinks/folder.py's part.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import os
import shutil
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from mailintake.mime.parse import safe_filename
from mailintake.sinks.base import Delivery, metadata
from mailintake.spool import Body, copy_to

# The C library's functions, from the symbols the process already has (dlopen(NULL)): no
# search (ctypes.util.find_library runs ldconfig, ~20 ms of CPU in every process that imports
# this, the writers' fork server included).
libc = ctypes.CDLL(None, use_errno=True)


def sync_filesystem(path: Path) -> None:
    """Flush everything written on the file system holding ``path`` (Linux syncfs)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if getattr(libc, "syncfs", None) is None or libc.syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


def fsync_dir(path: Path | str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def why(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "the disk is full"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if exc.errno == errno.EROFS:
        return "the file system is read-only"
    return exc.strerror or str(exc)


# What the import records of a message (subject, sender, sha256), the files written
# (relative to its folder), and its Message-ID.
Summary = tuple[str | None, str | None, str, list[str], str | None]


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
    return parsed.subject, parsed.sender, delivery.sha256, files, parsed.internet_message_id


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


def read_file(path: str) -> bytes:
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


def stage(
    temp: Path | str, delivery: Delivery, imported_at: str, *, begun: bool = False
) -> Outcome:
    """Write to the temporary name. ``begun``: the importing process has written
    message.eml already; it is read back from the page cache."""
    try:
        if begun:
            delivery = replace(delivery, raw=read_file(f"{temp}/message.eml"))
        summary = write_message(temp, delivery, imported_at, begun=begun)
    except OSError as exc:
        return _abandon(temp, exc)
    return (None, summary)


def _abandon(temp: Path | str, exc: OSError) -> Outcome:
    """Remove what was written of a message that could not be, and say why."""
    shutil.rmtree(temp, ignore_errors=True)
    return (why(exc), None)


def _finish_staging(work: list[tuple[str, Delivery]], imported_at: str) -> list[Outcome]:
    """In a worker: complete messages whose message.eml the importing process has written
    (it had the bytes; sending them here would copy them twice more)."""
    return [stage(temp, delivery, imported_at, begun=True) for temp, delivery in work]


PARALLEL_FROM = 16  # smaller batches are written here: starting work elsewhere costs more
PARALLEL_UP_TO = 4 << 20  # larger messages are written here, not copied to a worker


def default_workers() -> int:
    return min(os.cpu_count() or 1, 8)


def forget(files: Sequence[str]) -> None:
    """Tell the kernel it need not keep in memory what these message folders hold: they
    are on disk, and the import does not read them again. An import writes far more than it
    will read back soon; kept cached, it would push out what the machine's other programs
    use, and every batch would need memory the kernel has not handed out yet (on virtual
    machines that give unused memory back to their host, each such page costs a fault on
    the host; what that costs is in docs/importing.md, "Speed")."""
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


def hand_over(
    pool: ProcessPoolExecutor,
    batch: Sequence[Delivery],
    work: list[tuple[int, str, str]],
    imported_at: str,
) -> dict[int, Outcome]:
    """Write each message's bytes here, and have the workers do the rest, a share of
    the batch at a time (they start on the first share while this writes the next)."""
    outcomes: dict[int, Outcome] = {}
    share = max(1, -(-len(work) // (2 * default_workers())))
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
