"""The message properties Exchange derives from the MIME it stores (resources/message.md)."""

from __future__ import annotations

import email
import email.parser
import email.policy
import email.utils
import functools
import html
import re
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any


class Summary:
    """The properties of one stored message, each worked out from its MIME the first time it
    is asked for and kept (a listing asks for a few headers of every message, again at each
    listing; the body, for few of them). Never raises: what a malformed message does not
    give is empty, as Exchange shows it."""

    def __init__(self, raw: bytes) -> None:
        self._raw = raw

    @functools.cached_property
    def _head(self) -> EmailMessage | None:
        return _parsed(email.parser.BytesHeaderParser(policy=email.policy.default), self._raw)

    @functools.cached_property
    def _body(self) -> tuple[str, str, bool]:
        """The HTML body, the text body, whether it has attachments."""
        message = _parsed(email.parser.BytesParser(policy=email.policy.default), self._raw)
        try:
            return _bodies(message) if message is not None else ("", "", False)
        except Exception:
            return "", "", False

    def _header(self, name: str) -> str:
        try:
            value = self._head.get(name) if self._head is not None else None
            return str(value) if value is not None else ""
        except Exception:
            return ""

    def _recipients(self, name: str) -> list[dict[str, Any]]:
        try:
            return _recipients(self._head, name) if self._head is not None else []
        except Exception:
            return []

    @functools.cached_property
    def subject(self) -> str:
        return self._header("subject")

    @functools.cached_property
    def internet_message_id(self) -> str:
        return self._header("message-id").strip()

    @functools.cached_property
    def sender(self) -> dict[str, Any] | None:
        senders = self._recipients("from")
        return senders[0] if senders else None

    @functools.cached_property
    def to(self) -> list[dict[str, Any]]:
        return self._recipients("to")

    @functools.cached_property
    def cc(self) -> list[dict[str, Any]]:
        return self._recipients("cc")

    @functools.cached_property
    def reply_to(self) -> list[dict[str, Any]]:
        return self._recipients("reply-to")

    @functools.cached_property
    def sent(self) -> datetime | None:
        date = self._header("date")
        if not date:
            return None
        try:
            return email.utils.parsedate_to_datetime(date).astimezone(UTC)
        except (TypeError, ValueError):
            return None

    @functools.cached_property
    def importance(self) -> str:
        importance = (self._header("importance") or "normal").strip().lower()
        return importance if importance in ("low", "normal", "high") else "normal"

    @property
    def html_body(self) -> str:
        return self._body[0]

    @property
    def text_body(self) -> str:
        return self._body[1]

    @property
    def has_attachments(self) -> bool:
        return self._body[2]


def recipient(name: str, address: str) -> dict[str, Any]:
    return {"emailAddress": {"name": name or address, "address": address}}


def _recipients(message: EmailMessage, header: str) -> list[dict[str, Any]]:
    values = [str(v) for v in message.get_all(header, [])]
    return [recipient(n, a) for n, a in email.utils.getaddresses(values) if a]


def _parsed(parser: email.parser.BytesParser, raw: bytes) -> EmailMessage | None:
    try:
        parsed = parser.parsebytes(raw)
    except Exception:
        return None
    return parsed if isinstance(parsed, EmailMessage) else None


def _bodies(message: EmailMessage) -> tuple[str, str, bool]:
    html_body, text_body = "", ""
    part = message.get_body(preferencelist=("html", "plain"))
    if part is not None:
        content = part.get_content()
        if isinstance(content, str):
            if part.get_content_subtype() == "html":
                html_body = content
                text_body = re.sub(r"<[^>]+>", " ", content)
            else:
                text_body = content
                html_body = f"<html><body><pre>{html.escape(content)}</pre></body></html>"
    attached = message.is_multipart() and any(True for _ in message.iter_attachments())
    return html_body, text_body, attached


def preview(text: str) -> str:
    """bodyPreview: "The first 255 characters of the message body" (resources/message.md)."""
    return " ".join(html.unescape(text).split())[:255]
