"""The message properties Exchange derives from the MIME it stores (resources/message.md)."""

from __future__ import annotations

import email
import email.policy
import email.utils
import html
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any


@dataclass(frozen=True)
class Summary:
    subject: str = ""
    internet_message_id: str = ""
    sender: dict[str, Any] | None = None
    to: list[dict[str, Any]] = field(default_factory=list)
    cc: list[dict[str, Any]] = field(default_factory=list)
    reply_to: list[dict[str, Any]] = field(default_factory=list)
    sent: datetime | None = None
    html_body: str = ""
    text_body: str = ""
    has_attachments: bool = False
    importance: str = "normal"


def recipient(name: str, address: str) -> dict[str, Any]:
    return {"emailAddress": {"name": name or address, "address": address}}


def _recipients(message: EmailMessage, header: str) -> list[dict[str, Any]]:
    values = [str(v) for v in message.get_all(header, [])]
    return [recipient(n, a) for n, a in email.utils.getaddresses(values) if a]


def summarize(raw: bytes) -> Summary:
    """Never raises: a malformed message gets empty properties, as Exchange shows them."""
    try:
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return _summary(parsed)
    except Exception:
        return Summary()


def _summary(message: EmailMessage) -> Summary:
    senders = _recipients(message, "from")
    sent: datetime | None = None
    if message["date"]:
        try:
            sent = email.utils.parsedate_to_datetime(str(message["date"])).astimezone(UTC)
        except (TypeError, ValueError):
            sent = None
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
    importance = str(message.get("importance", "normal")).strip().lower()
    return Summary(
        subject=str(message.get("subject", "")),
        internet_message_id=str(message.get("message-id", "")).strip(),
        sender=senders[0] if senders else None,
        to=_recipients(message, "to"),
        cc=_recipients(message, "cc"),
        reply_to=_recipients(message, "reply-to"),
        sent=sent,
        html_body=html_body,
        text_body=text_body,
        has_attachments=message.is_multipart() and any(True for _ in message.iter_attachments()),
        importance=importance if importance in ("low", "normal", "high") else "normal",
    )


def preview(text: str) -> str:
    """bodyPreview: "The first 255 characters of the message body" (resources/message.md)."""
    return " ".join(html.unescape(text).split())[:255]
