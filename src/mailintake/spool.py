"""Messages too large to hold in memory: a download is written to a spool file once it passes
a threshold the source sets, and travels to the output as that file (a ``Spooled``) instead
of bytes. Everything that reads a message takes either (``Body``)."""

from __future__ import annotations

import contextlib
import hashlib
import mmap
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

CHUNK = 1 << 20


@dataclass(frozen=True)
class Spooled:
    """A message's bytes in a file of the spool folder; removed by ``discard``."""

    path: Path
    size: int

    def __len__(self) -> int:
        return self.size

    @contextlib.contextmanager
    def mapped(self) -> Iterator[mmap.mmap]:
        """The file mapped read-only (pages are read on demand, not copied); not empty."""
        with open(self.path, "rb") as file:
            view = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            yield view
        finally:
            view.close()

    def read(self, start: int, end: int) -> bytes:
        with open(self.path, "rb") as file:
            file.seek(start)
            return file.read(end - start)

    def chunks(self, size: int = CHUNK) -> Iterator[bytes]:
        with open(self.path, "rb") as file:
            while block := file.read(size):
                yield block

    def discard(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


Body = bytes | Spooled


def sha256_of(body: Body) -> str:
    if isinstance(body, bytes):
        return hashlib.sha256(body).hexdigest()
    digest = hashlib.sha256()
    for block in body.chunks():
        digest.update(block)
    return digest.hexdigest()


def read_all(body: Body) -> bytes:
    """The whole message in memory (for outputs that need it so, and for tests)."""
    return body if isinstance(body, bytes) else body.path.read_bytes()


def copy_to(body: Body, target: BinaryIO) -> None:
    if isinstance(body, bytes):
        target.write(body)
        return
    for block in body.chunks():
        target.write(block)


class SpoolWriter:
    """Collects a download in memory until it passes ``threshold`` bytes, then in a file of
    ``folder``; ``finish`` gives bytes or the ``Spooled`` file."""

    def __init__(self, folder: Path, threshold: int) -> None:
        self.folder = folder
        self.threshold = threshold
        self._parts: list[bytes] = []
        self._size = 0
        self._file: BinaryIO | None = None
        self._path: Path | None = None

    def write(self, block: bytes) -> None:
        self._size += len(block)
        if self._file is None and self._size > self.threshold:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix="message-", suffix=".eml", dir=self.folder)
            self._file, self._path = os.fdopen(fd, "wb"), Path(name)
            for part in self._parts:
                self._file.write(part)
            self._parts = []
        if self._file is not None:
            self._file.write(block)
        else:
            self._parts.append(block)

    def finish(self) -> Body:
        if self._file is None or self._path is None:
            return b"".join(self._parts)
        self._file.close()
        return Spooled(self._path, self._size)

    def abandon(self) -> None:
        if self._file is not None and self._path is not None:
            self._file.close()
            with contextlib.suppress(FileNotFoundError):
                self._path.unlink()
