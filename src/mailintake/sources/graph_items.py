"""What Graph's message listing gives, as the source's items."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mailintake.keys import graph_key
from mailintake.sources.base import KnownKeys, SourceItem


def listed_item(message: dict[str, Any]) -> SourceItem:
    """One listed message (``LISTED`` fields, and its size when Graph gave it)."""
    identifier = str(message["id"])
    return SourceItem(
        key=graph_key(identifier),
        source={"id": identifier},
        size=_size(message),
        received=_date(message.get("receivedDateTime")),
        subject=_text(message.get("subject")),
        sender=_sender(message.get("from")),
    )


def unknown(page: list[SourceItem], known: KnownKeys | None) -> list[SourceItem]:
    """The items of ``page`` not imported yet."""
    if known is None:
        return page
    imported = known([item.key for item in page])
    return [item for item in page if item.key not in imported]


def _size(message: dict[str, Any]) -> int | None:
    """PR_MESSAGE_SIZE from ``singleValueExtendedProperties``, when Graph gave it."""
    for prop in message.get("singleValueExtendedProperties") or []:
        if not isinstance(prop, dict):
            continue
        kind, _, tag = str(prop.get("id", "")).partition(" ")
        try:
            if kind.lower() == "integer" and int(tag, 16) == 0x0E08:
                return int(str(prop.get("value")))
        except ValueError:
            return None
    return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _sender(value: Any) -> str | None:
    """``from.emailAddress`` as ``Name <address>`` (shown for a message that failed)."""
    address = value.get("emailAddress") if isinstance(value, dict) else None
    if not isinstance(address, dict):
        return None
    mail, name = _text(address.get("address")), _text(address.get("name"))
    if name and mail and name != mail:
        return f"{name} <{mail}>"
    return mail or name


def _date(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
