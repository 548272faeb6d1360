"""Graph's JSON for message and mailFolder resources (resources/message.md,
resources/mailfolder.md), and the property values $filter compares and lists are sorted by."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sandbox.graph.errors import bad_request
from sandbox.graph.mime import preview
from sandbox.graph.model import Folder, Mailbox, Message

MESSAGE_PROPERTIES = (
    "id",
    "createdDateTime",
    "lastModifiedDateTime",
    "changeKey",
    "categories",
    "receivedDateTime",
    "sentDateTime",
    "hasAttachments",
    "internetMessageId",
    "subject",
    "bodyPreview",
    "importance",
    "parentFolderId",
    "conversationId",
    "conversationIndex",
    "isDeliveryReceiptRequested",
    "isReadReceiptRequested",
    "isRead",
    "isDraft",
    "webLink",
    "inferenceClassification",
    "body",
    "uniqueBody",
    "sender",
    "from",
    "toRecipients",
    "ccRecipients",
    "bccRecipients",
    "replyTo",
    "flag",
    "internetMessageHeaders",
)
# Returned when no $select is given (internetMessageHeaders and uniqueBody only on request).
DEFAULT_MESSAGE = tuple(p for p in MESSAGE_PROPERTIES if p not in ("internetMessageHeaders",))
FOLDER_PROPERTIES = (
    "id",
    "displayName",
    "parentFolderId",
    "childFolderCount",
    "unreadItemCount",
    "totalItemCount",
    "sizeInBytes",
    "isHidden",
)


def timestamp(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else None


_FILTERABLE: dict[str, Callable[[Message], Any]] = {
    "id": lambda m: m.immutable_id,
    "isRead": lambda m: m.is_read,
    "receivedDateTime": lambda m: m.received,
    "sentDateTime": lambda m: m.summary.sent,
    "createdDateTime": lambda m: m.created,
    "lastModifiedDateTime": lambda m: m.modified,
    "hasAttachments": lambda m: m.summary.has_attachments,
    "subject": lambda m: m.summary.subject,
    "importance": lambda m: m.summary.importance,
    "internetMessageId": lambda m: m.summary.internet_message_id,
    "isDraft": lambda m: False,
    "inferenceClassification": lambda m: m.inference,
}


def message_value(message: Message, name: str) -> Any:
    """The value $filter and sorting see (datetimes as datetimes)."""
    getter = _FILTERABLE.get(name)
    if getter is None:
        raise bad_request(f"The emulator cannot filter or sort on '{name}'.")
    return getter(message)


def message_json(
    box: Mailbox,
    message: Message,
    *,
    immutable: bool,
    select: tuple[str, ...] | None,
    text_body: bool,
    expand: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The message's JSON with the selected properties (all default ones without $select);
    only those are computed, as a list of many messages usually selects a few."""
    names = ("id", *select) if select else DEFAULT_MESSAGE
    message_id = message.immutable_id if immutable else message.regular_id
    answer: dict[str, Any] = {"@odata.etag": f'W/"{message.change_key}"'}
    for name in names:
        answer[name] = _PROPERTIES[name](message, message_id, text_body)
    if expand:
        answer["singleValueExtendedProperties"] = [
            found for found in (_extended(message, wanted) for wanted in expand) if found
        ]
    return answer


# Extended properties the emulator knows, by (type, tag): PR_MESSAGE_SIZE (PidTagMessageSize,
# 0x0E08, PT_LONG), the item's size in the store: "the sum, in bytes, of the sizes of all
# properties on a message object" (Microsoft Learn, "PidTagMessageSize Canonical Property");
# the emulator, which stores the MIME only, gives the MIME's length. Graph names it back as
# "Integer 0xe08" with the value as a string (extended-properties-overview.md).
_EXTENDED: dict[tuple[str, int], Callable[[Message], str]] = {
    ("integer", 0x0E08): lambda m: str(len(m.raw)),
}


def _extended(message: Message, wanted: str) -> dict[str, str] | None:
    kind, _, tag = wanted.strip().partition(" ")
    try:
        key = (kind.lower(), int(tag, 16))
    except ValueError:
        raise bad_request(f"The extended property id '{wanted}' is not valid.") from None
    getter = _EXTENDED.get(key)
    if getter is None:
        return None  # a property the item does not have is left out
    return {"id": f"{kind.capitalize()} {hex(key[1])}", "value": getter(message)}


Property = Callable[[Message, str, bool], Any]  # message, its id as shown, text body wanted


def _body(message: Message, text_body: bool) -> dict[str, str]:
    summary = message.summary
    content = summary.text_body if text_body else summary.html_body
    return {"contentType": "text" if text_body else "html", "content": content}


_PROPERTIES: dict[str, Property] = {
    "id": lambda m, i, t: i,
    "createdDateTime": lambda m, i, t: timestamp(m.created),
    "lastModifiedDateTime": lambda m, i, t: timestamp(m.modified),
    "changeKey": lambda m, i, t: m.change_key,
    "categories": lambda m, i, t: list(m.categories),
    "receivedDateTime": lambda m, i, t: timestamp(m.received),
    "sentDateTime": lambda m, i, t: timestamp(m.summary.sent or m.received),
    "hasAttachments": lambda m, i, t: m.summary.has_attachments,
    "internetMessageId": lambda m, i, t: m.summary.internet_message_id,
    "subject": lambda m, i, t: m.summary.subject,
    "bodyPreview": lambda m, i, t: preview(m.summary.text_body),
    "importance": lambda m, i, t: m.summary.importance,
    "parentFolderId": lambda m, i, t: m.folder_id,
    "conversationId": lambda m, i, t: "AAQkAG" + m.immutable_id[6:30],
    "conversationIndex": lambda m, i, t: "AQHX" + m.immutable_id[8:20],
    "isDeliveryReceiptRequested": lambda m, i, t: False,
    "isReadReceiptRequested": lambda m, i, t: False,
    "isRead": lambda m, i, t: m.is_read,
    "isDraft": lambda m, i, t: False,
    "webLink": lambda m, i, t: f"https://outlook.office365.com/owa/?ItemID={i}&exvsurl=1",
    "inferenceClassification": lambda m, i, t: m.inference,
    "body": lambda m, i, t: _body(m, t),
    "uniqueBody": lambda m, i, t: _body(m, t),
    "sender": lambda m, i, t: m.summary.sender,
    "from": lambda m, i, t: m.summary.sender,
    "toRecipients": lambda m, i, t: m.summary.to,
    "ccRecipients": lambda m, i, t: m.summary.cc,
    "bccRecipients": lambda m, i, t: [],
    "replyTo": lambda m, i, t: m.summary.reply_to,
    "flag": lambda m, i, t: dict(m.flag),
    "internetMessageHeaders": lambda m, i, t: _headers(m.raw),
}


def _headers(raw: bytes) -> list[dict[str, str]]:
    parsed = email.message_from_bytes(raw, policy=email.policy.compat32)
    return [{"name": k, "value": str(v)} for k, v in parsed.items()]


def folder_value(box: Mailbox, folder: Folder, name: str) -> Any:
    return folder_json(box, folder, None)[name]


def folder_json(box: Mailbox, folder: Folder, select: tuple[str, ...] | None) -> dict[str, Any]:
    messages = box.in_folder(folder)
    everything: dict[str, Any] = {
        "id": folder.id,
        "displayName": folder.display_name,
        "parentFolderId": folder.parent_id or "",
        "childFolderCount": len(box.children(folder)),
        "unreadItemCount": sum(1 for m in messages if not m.is_read),
        "totalItemCount": len(messages),
        "sizeInBytes": sum(len(m.raw) for m in messages),
        "isHidden": folder.hidden,
    }
    names = ("id", *select) if select else FOLDER_PROPERTIES
    return {name: everything[name] for name in names}
