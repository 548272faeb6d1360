"""A fast MIME walker: finds the leaf parts of a message with ``bytes.find`` on boundaries and
decodes their bodies with the C codecs, instead of feeding every line through the standard
library's feed parser (which dominates import time on messages with attachments). Headers are
still read by the standard library. Anything unusual raises ``ValueError``; the caller then
falls back to the standard parser."""

from __future__ import annotations

import binascii
import email.parser
import email.policy
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message

_HEADERS = email.parser.BytesHeaderParser(policy=email.policy.compat32)
MAX_DEPTH = 20


@dataclass(frozen=True)
class Leaf:
    headers: Message
    body: bytes  # still transfer-encoded


def split_head(raw: bytes) -> tuple[bytes, bytes]:
    for separator in (b"\r\n\r\n", b"\n\n"):
        at = raw.find(separator)
        if at != -1:
            return raw[: at + len(separator)], raw[at + len(separator) :]
    return raw, b""


def headers_of(raw: bytes) -> Message:
    head, _ = split_head(raw)
    return _HEADERS.parsebytes(head)


def _parts(body: bytes, boundary: bytes) -> list[bytes]:
    delimiter = b"--" + boundary
    found: list[bytes] = []
    start = body.find(delimiter)
    if start == -1:
        raise ValueError("multipart without its boundary")
    while True:
        line_end = body.find(b"\n", start)
        if line_end == -1:
            break
        marker = body[start:line_end].rstrip(b"\r \t")
        if marker.endswith(b"--") and marker[:-2] == delimiter:
            break  # the closing delimiter
        nxt = body.find(b"\n" + delimiter, line_end)
        if nxt == -1:
            found.append(body[line_end + 1 :])
            break
        end = nxt - 1 if nxt > 0 and body[nxt - 1 : nxt] == b"\r" else nxt
        found.append(body[line_end + 1 : end])
        start = nxt + 1
    return found


def leaves(raw: bytes, depth: int = 0) -> Iterator[Leaf]:
    if depth > MAX_DEPTH:
        raise ValueError("multipart nested too deeply")
    head, body = split_head(raw)
    headers = _HEADERS.parsebytes(head)
    if headers.get_content_maintype() == "multipart":
        boundary = headers.get_param("boundary")
        if not isinstance(boundary, str) or not boundary:
            raise ValueError("multipart without a boundary parameter")
        for part in _parts(body, boundary.encode("latin-1")):
            yield from leaves(part, depth + 1)
    elif headers.get_content_type() == "message/rfc822" and str(
        headers.get("Content-Transfer-Encoding", "7bit")
    ).strip().lower() in ("7bit", "8bit", "binary"):
        yield from leaves(body, depth + 1)  # a forwarded message: its parts, as email does
    else:
        yield Leaf(headers, body)


def decode(leaf: Leaf) -> bytes:
    encoding = str(leaf.headers.get("Content-Transfer-Encoding", "")).strip().lower()
    if encoding == "base64":
        return binascii.a2b_base64(leaf.body)
    if encoding == "quoted-printable":
        return binascii.a2b_qp(leaf.body)
    return leaf.body
