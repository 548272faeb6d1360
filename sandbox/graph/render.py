"""Graph's JSON for message and mailFolder resources (resources/message.md,
resources/mailfolder.md), and the property values $filter and $orderby compare."""

from __future__ import annotations

import email
import email.policy
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


def message_value(message: Message, name: str) -> Any:
    """The value $filter and $orderby see (datetimes as datetimes)."""
    summary = message.summary
    values: dict[str, Any] = {
        "id": message.immutable_id,
        "isRead": message.is_read,
        "receivedDateTime": message.received,
        "sentDateTime": summary.sent,
        "createdDateTime": message.created,
        "lastModifiedDateTime": message.modified,
        "hasAttachments": summary.has_attachments,
        "subject": summary.subject,
        "importance": summary.importance,
        "internetMessageId": summary.internet_message_id,
        "isDraft": False,
        "inferenceClassification": message.inference,
    }
    if name not in values:
        raise bad_request(f"The emulator cannot filter or sort on '{name}'.")
    return values[name]


def message_json(
    box: Mailbox,
    message: Message,
    *,
    immutable: bool,
    select: tuple[str, ...] | None,
    text_body: bool,
) -> dict[str, Any]:
    summary = message.summary
    message_id = message.immutable_id if immutable else message.regular_id
    names = ("id", *select) if select else DEFAULT_MESSAGE
    content = summary.text_body if text_body else summary.html_body
    body = {"contentType": "text" if text_body else "html", "content": content}
    everything: dict[str, Any] = {
        "id": message_id,
        "createdDateTime": timestamp(message.created),
        "lastModifiedDateTime": timestamp(message.modified),
        "changeKey": message.change_key,
        "categories": list(message.categories),
        "receivedDateTime": timestamp(message.received),
        "sentDateTime": timestamp(summary.sent or message.received),
        "hasAttachments": summary.has_attachments,
        "internetMessageId": summary.internet_message_id,
        "subject": summary.subject,
        "bodyPreview": preview(summary.text_body),
        "importance": summary.importance,
        "parentFolderId": message.folder_id,
        "conversationId": "AAQkAG" + message.immutable_id[6:30],
        "conversationIndex": "AQHX" + message.immutable_id[8:20],
        "isDeliveryReceiptRequested": False,
        "isReadReceiptRequested": False,
        "isRead": message.is_read,
        "isDraft": False,
        "webLink": f"https://outlook.office365.com/owa/?ItemID={message_id}&exvsurl=1",
        "inferenceClassification": message.inference,
        "body": body,
        "uniqueBody": body,
        "sender": summary.sender,
        "from": summary.sender,
        "toRecipients": summary.to,
        "ccRecipients": summary.cc,
        "bccRecipients": [],
        "replyTo": summary.reply_to,
        "flag": dict(message.flag),
        "internetMessageHeaders": _headers(message.raw),
    }
    answer: dict[str, Any] = {"@odata.etag": f'W/"{message.change_key}"'}
    for name in names:
        answer[name] = everything[name]
    return answer


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
