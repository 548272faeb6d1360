"""A fast MIME walker: finds the leaf parts of a message with ``find`` on boundaries and decodes
their bodies with the C codecs, instead of feeding every line through the standard library's
feed parser (which dominates import time on messages with attachments). Headers are still read
by the standard library. Anything unusual raises ``ValueError``; the caller then falls back to
the standard parser.

It works on offsets into a buffer — bytes, or a read-only memory map of a spooled message — and
never copies a part's body: attachments are decoded chunk by chunk when they are written, so a
message of hundreds of megabytes is read with a few megabytes of memory. On a memory map, the
pages already searched are given back as the search goes on."""

from __future__ import annotations

import binascii
import mmap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import Message

import pybase64

from mailintake.mime.headers import read_headers

MAX_DEPTH = 20
MAX_HEAD = 1 << 20  # a header block larger than this is not a header block
WINDOW = 8 << 20  # bytes of a memory map searched before its pages are given back
Buffer = bytes | mmap.mmap
Reader = Callable[[int, int], bytes]  # (start, end) -> those bytes


@dataclass(frozen=True)
class Leaf:
    headers: Message
    start: int  # the body, still transfer-encoded: buffer[start:end]
    end: int

    @property
    def encoding(self) -> str:
        return str(self.headers.get("Content-Transfer-Encoding", "")).strip().lower()


def _release(buffer: Buffer, start: int, end: int) -> None:
    """Give back the pages of a memory map between ``start`` and ``end`` (they are read again
    from the file if needed): what was searched does not stay in memory."""
    if isinstance(buffer, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED"):
        first = start - start % mmap.PAGESIZE
        if end - first >= mmap.PAGESIZE:
            buffer.madvise(mmap.MADV_DONTNEED, first, end - first)


def find(buffer: Buffer, needle: bytes, start: int, end: int, window: int = WINDOW) -> int:
    if isinstance(buffer, bytes):
        return buffer.find(needle, start, end)
    position = start
    while position < end:
        stop = min(end, position + window)
        found = buffer.find(needle, position, min(end, stop + len(needle) - 1))
        _release(buffer, position, stop)
        if found != -1:
            return found
        position = stop
    return -1


def split_head(buffer: Buffer, start: int, end: int) -> tuple[int, int]:
    """Where the header block ends and the body starts."""
    limit = min(end, start + MAX_HEAD)
    for separator in (b"\r\n\r\n", b"\n\n"):
        at = find(buffer, separator, start, limit)
        if at != -1:
            return at + len(separator), at + len(separator)
    if limit < end:
        raise ValueError("no end of the header block")
    return end, end


def headers_of(buffer: Buffer, start: int = 0, end: int | None = None) -> Message:
    end = len(buffer) if end is None else end
    head_end, _ = split_head(buffer, start, end)
    return read_headers(buffer[start:head_end])


def _parts(buffer: Buffer, start: int, end: int, boundary: bytes) -> list[tuple[int, int]]:
    delimiter = b"--" + boundary
    found: list[tuple[int, int]] = []
    at = find(buffer, delimiter, start, end)
    if at == -1:
        raise ValueError("multipart without its boundary")
    while True:
        line_end = find(buffer, b"\n", at, end)
        if line_end == -1:
            break
        marker = buffer[at:line_end].rstrip(b"\r \t")
        if marker.endswith(b"--") and marker[:-2] == delimiter:
            break  # the closing delimiter
        nxt = find(buffer, b"\n" + delimiter, line_end, end)
        if nxt == -1:
            found.append((line_end + 1, end))
            break
        stop = nxt - 1 if nxt > 0 and buffer[nxt - 1 : nxt] == b"\r" else nxt
        found.append((line_end + 1, stop))
        at = nxt + 1
    return found


def leaves(
    buffer: Buffer,
    start: int = 0,
    end: int | None = None,
    depth: int = 0,
    headers: Message | None = None,
) -> Iterator[Leaf]:
    """The leaf parts between ``start`` and ``end``; ``headers``: those of the part starting
    at ``start``, when they have been read already."""
    if depth > MAX_DEPTH:
        raise ValueError("multipart nested too deeply")
    end = len(buffer) if end is None else end
    head_end, body = split_head(buffer, start, end)
    if headers is None:
        headers = read_headers(buffer[start:head_end])
    if headers.get_content_maintype() == "multipart":
        boundary = headers.get_param("boundary")
        if not isinstance(boundary, str) or not boundary:
            raise ValueError("multipart without a boundary parameter")
        for part_start, part_end in _parts(buffer, body, end, boundary.encode("latin-1")):
            yield from leaves(buffer, part_start, part_end, depth + 1)
    elif headers.get_content_type() == "message/rfc822" and str(
        headers.get("Content-Transfer-Encoding", "7bit")
    ).strip().lower() in ("7bit", "8bit", "binary"):
        yield from leaves(buffer, body, end, depth + 1)  # a forwarded message: its parts
    else:
        yield Leaf(headers, body, end)


_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
_NOT_BASE64 = bytes(b for b in range(256) if b not in _ALPHABET)
_TRAILER = b"= \t\r\n"


def decoded(read: Reader, encoding: str, start: int, end: int, chunk: int) -> Iterator[bytes]:
    """The body between ``start`` and ``end`` decoded, in pieces of about ``chunk`` bytes.
    Lenient like the standard library: characters outside the alphabet are skipped, and a
    last group missing its padding is completed."""
    position = start
    if encoding == "base64":
        if end - start <= chunk:  # the usual case: the whole body at once
            yield b64(read(start, end))
            return
        carry = b""
        while position < end:
            stop = min(end, position + chunk)
            piece = carry + read(position, stop).translate(None, _NOT_BASE64)
            position = stop
            usable = len(piece) - len(piece) % 4 if position < end else len(piece)
            carry = piece[usable:]
            yield b64(piece[:usable])
        return
    if encoding == "quoted-printable":
        while position < end:
            stop = min(end, position + chunk)
            if stop < end:  # end at a line break: a soft break "=" never ends a piece
                at = read(stop, min(end, stop + 4096)).find(b"\n")
                stop = stop + at + 1 if at != -1 else min(end, stop + 4096)
            yield binascii.a2b_qp(read(position, stop))
            position = stop
        return
    while position < end:
        stop = min(end, position + chunk)
        yield read(position, stop)
        position = stop


def b64(data: bytes) -> bytes:
    """``data`` decoded from base64, never raising. Characters outside the alphabet are
    skipped. Well-formed data (padding, if any, only at the end) goes to pybase64's vector
    decoder, which gives the same bytes as the standard library's several times faster."""
    pad = data.find(b"=")
    if pad == -1 or not data[pad:].strip(_TRAILER):
        try:
            return pybase64.b64decode(data, validate=False)
        except (binascii.Error, ValueError):
            pass
    return _lenient(data.translate(None, _NOT_BASE64))


def _lenient(data: bytes) -> bytes:
    """Like ``binascii.a2b_base64``, which stops at the padding, but a last group missing its
    padding is completed, a lone last character dropped, and a ``=`` inside the data skipped."""
    try:
        return binascii.a2b_base64(data)
    except binascii.Error:
        keep = data.replace(b"=", b"")
        extra = len(keep) % 4
        keep = keep[:-1] if extra == 1 else keep + b"=" * ((4 - extra) % 4)
        return binascii.a2b_base64(keep)
