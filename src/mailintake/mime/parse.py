"""Reading a message for its metadata and attachments, never raising: what cannot be read is
recorded as a defect, and the original bytes are always kept unchanged (CONTRACT §5)."""

from __future__ import annotations

import email
import email.header
import email.utils
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message

from mailintake.mime import split
from mailintake.mime.filenames import safe_filename
from mailintake.mime.headers import read_headers
from mailintake.spool import CHUNK, Body, Spooled

LENIENT_UP_TO = 8 << 20  # the largest message of unusual structure read by the standard parser


@dataclass(frozen=True)
class Attachment:
    """An attachment, read where it lies in the message (decoded piece by piece when it is
    written) or, from the standard parser, already decoded."""

    filename: str
    content_type: str
    body: Body = field(repr=False)  # the message, or the decoded payload itself
    start: int = 0
    end: int | None = None
    encoding: str = ""  # transfer encoding still to undo; "" when ``body`` is the payload

    def chunks(self, size: int = CHUNK) -> Iterator[bytes]:
        end = len(self.body) if self.end is None else self.end
        if isinstance(self.body, bytes):
            body = self.body
            yield from split.decoded(lambda a, b: body[a:b], self.encoding, self.start, end, size)
            return
        with open(self.body.path, "rb") as file:

            def read(a: int, b: int) -> bytes:
                file.seek(a)
                return file.read(b - a)

            yield from split.decoded(read, self.encoding, self.start, end, size)

    @property
    def data(self) -> bytes:
        return b"".join(self.chunks())

    def measure(self) -> tuple[int, str]:
        """Size and SHA-256 of the decoded attachment, in one pass."""
        size, digest = 0, hashlib.sha256()
        for piece in self.chunks():
            size += len(piece)
            digest.update(piece)
        return size, digest.hexdigest()


@dataclass(frozen=True)
class Parsed:
    internet_message_id: str | None
    subject: str | None
    sender: str | None
    to: list[str]
    cc: list[str]
    date: str | None
    attachments: list[Attachment]
    defects: list[str]


def _decode(value: str) -> str:
    """RFC 2047 encoded words decoded; undecodable ones kept as they are."""
    if "=?" not in value:
        return value
    return str(email.header.make_header(email.header.decode_header(value)))


def _text(message: Message, name: str, defects: list[str]) -> str | None:
    value = message.get(name)
    if value is None:
        return None
    try:
        text = _decode(str(value))
    except Exception as exc:  # a header the decoder cannot read: keep it raw
        defects.append(f"{name}: {exc.__class__.__name__}: {exc}")
        text = str(value)
    return " ".join(text.split()) or None


# The usual forms of an address list: ``addr``, ``<addr>``, ``Some Name <addr>`` and
# ``"Last, First" <addr>``, comma-separated; read with one expression each. Anything else
# (comments, dots or escapes in names, groups, routes) goes to ``email.utils.getaddresses``,
# which gives the same pairs for these forms and reads every other one.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_SPEC = rf"{_ATOM}(?:\.{_ATOM})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
_WS = r"[ \t\r\n]*"
_MAILBOX = re.compile(
    rf"{_WS}(?:((?:{_ATOM}(?:[ \t\r\n]+{_ATOM})*{_WS})?)<({_SPEC})>"
    rf'|"([^"\\\r\n]*)"{_WS}<({_SPEC})>'
    rf"|({_SPEC})){_WS}(,|\Z)"
)


def _simple_addresses(value: str) -> list[tuple[str, str]] | None:
    """The (name, address) pairs of ``value`` when it has only the usual forms, else None."""
    pairs: list[tuple[str, str]] = []
    position = 0
    while match := _MAILBOX.match(value, position):
        atoms, angle, quoted, quoted_angle, bare, separator = match.groups()
        if angle is not None:
            pairs.append((" ".join((atoms or "").split()), angle))
        elif quoted_angle is not None:
            pairs.append((quoted, quoted_angle))
        else:
            pairs.append(("", bare))
        if not separator:
            return pairs
        position = match.end()
    return None


def _address_pairs(values: list[str]) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for value in values:
        simple = _simple_addresses(value)
        if simple is None:
            return email.utils.getaddresses(values)
        pairs += simple
    return pairs


def _addresses(message: Message, name: str, defects: list[str]) -> list[str]:
    try:
        values = message.get_all(name) or []
        pairs = _address_pairs([str(v) for v in values])
        return [f"{_decode(p[0])} <{p[1]}>" if p[0] else p[1] for p in pairs if p[1] or p[0]]
    except Exception as exc:
        defects.append(f"{name}: {exc.__class__.__name__}: {exc}")
        return []


def _date(message: Message, defects: list[str]) -> str | None:
    raw = _text(message, "Date", defects)
    if raw is None:
        return None
    try:
        return email.utils.parsedate_to_datetime(raw).isoformat()
    except (TypeError, ValueError, IndexError):
        defects.append(f"Date: cannot be read: {raw[:100]}")
        return raw


def _attachments(message: Message, defects: list[str]) -> list[Attachment]:
    found: list[Attachment] = []
    try:
        parts = list(message.walk())
    except Exception as exc:
        defects.append(f"structure: {exc.__class__.__name__}: {exc}")
        return found
    for part in parts:
        try:
            if part.is_multipart():
                continue
            disposition = (part.get_content_disposition() or "").lower()
            filename = part.get_filename()
            if filename:
                filename = _decode(filename)
            if disposition != "attachment" and not filename:
                continue
            payload = part.get_payload(decode=True)
            if not isinstance(payload, bytes):
                payload = b""
            found.append(Attachment(str(filename or ""), part.get_content_type(), payload))
        except Exception as exc:
            defects.append(f"attachment: {exc.__class__.__name__}: {exc}")
    return found


def _fast_attachments(buffer: split.Buffer, body: Body, message: Message) -> list[Attachment]:
    found: list[Attachment] = []
    for leaf in split.leaves(buffer, headers=message):
        headers = leaf.headers
        disposition = (headers.get_content_disposition() or "").lower()
        filename = headers.get_filename()
        if disposition != "attachment" and not filename:
            continue
        found.append(
            Attachment(
                _decode(str(filename or "")),
                headers.get_content_type(),
                body,
                leaf.start,
                leaf.end,
                leaf.encoding if leaf.encoding in ("base64", "quoted-printable") else "",
            )
        )
    return found


def parse(raw: Body) -> Parsed:
    """Metadata and attachments of ``raw`` (bytes, or a spooled file); never raises."""
    if isinstance(raw, Spooled) and raw.size:
        with raw.mapped() as view:
            return _parse(view, raw)
    return _parse(raw if isinstance(raw, bytes) else b"", raw)


def _parse(buffer: split.Buffer, body: Body) -> Parsed:
    defects: list[str] = []
    try:
        message = split.headers_of(buffer)
        attachments = _fast_attachments(buffer, body, message)
    except Exception as exc:
        if len(buffer) <= LENIENT_UP_TO:  # unusual structure: the standard parser, lenient
            return _parse_leniently(buffer if isinstance(buffer, bytes) else buffer[:])
        # Too large for the standard parser, which holds a message in memory several times
        # over: its headers are read, its parts are not; message.eml is complete.
        defects.append(f"structure: attachments not read ({exc})")
        attachments = []
        try:
            message = split.headers_of(buffer)
        except Exception:
            message = email.message_from_bytes(buffer[: split.MAX_HEAD])
    return _with_headers(message, attachments, defects)


def _parse_leniently(raw: bytes) -> Parsed:
    defects: list[str] = []
    try:
        # compat32: several times faster than policy.default's header registry, and
        # lenient; headers are decoded here, on demand.
        message = email.message_from_bytes(raw)
    except Exception as exc:  # pragma: no cover - the parser is lenient
        defects.append(f"message: {exc.__class__.__name__}: {exc}")
        return Parsed(None, None, None, [], [], None, [], defects)
    defects += [f"{d.__class__.__name__}" for d in getattr(message, "defects", [])]
    attachments = _attachments(message, defects)
    return _with_headers(message, attachments, defects)


def _with_headers(message: Message, attachments: list[Attachment], defects: list[str]) -> Parsed:
    sender = _addresses(message, "From", defects)
    return Parsed(
        internet_message_id=_text(message, "Message-ID", defects),
        subject=_text(message, "Subject", defects),
        sender=sender[0] if sender else None,
        to=_addresses(message, "To", defects),
        cc=_addresses(message, "Cc", defects),
        date=_date(message, defects),
        attachments=attachments,
        defects=defects,
    )


HEADLINE_READ = 16 << 10  # of a header block the server gave for a failed message
HEADLINE_KEPT = 500  # characters of its subject or sender kept


def subject_and_sender(block: bytes) -> tuple[str | None, str | None]:
    """The decoded Subject and first From of a header block (what a server gives of a
    message it cannot give whole), read from its first ``HEADLINE_READ`` bytes only and each
    cut to ``HEADLINE_KEPT`` characters; None where it has none or it cannot be read."""
    defects: list[str] = []
    try:
        message = read_headers(block[:HEADLINE_READ])
    except Exception:  # the block is not headers: nothing known
        return None, None
    subject = _text(message, "Subject", defects)
    senders = _addresses(message, "From", defects)
    return (
        subject[:HEADLINE_KEPT] if subject else None,
        senders[0][:HEADLINE_KEPT] if senders else None,
    )


def message_id(block: bytes) -> str | None:
    """The Message-ID of a header block (what ``BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]``
    gives), written as ``Parsed.internet_message_id`` has it; None where it has none."""
    try:
        message = read_headers(block[:HEADLINE_READ])
    except Exception:  # the block is not headers: nothing known
        return None
    return _text(message, "Message-ID", [])


__all__ = ["Attachment", "Parsed", "message_id", "parse", "safe_filename", "subject_and_sender"]
