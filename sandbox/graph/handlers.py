"""One function per Graph operation. Each cites the API reference page it follows
(microsoftgraph/microsoft-graph-docs-contrib, api-reference/v1.0/api/...)."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

from starlette.responses import Response

from sandbox.graph import odata
from sandbox.graph.call import Dropped
from sandbox.graph.context import Context
from sandbox.graph.errors import GraphError, bad_request, id_malformed, item_not_found
from sandbox.graph.model import WELL_KNOWN, Folder, Message, looks_like_id
from sandbox.graph.render import (
    FOLDER_PROPERTIES,
    MESSAGE_PROPERTIES,
    folder_json,
    folder_value,
    message_json,
    message_value,
)

# message-update.md: "isRead", "categories", "flag" and "inferenceClassification" can be
# updated on any message; the others only while isDraft is true (never here).
UPDATABLE = {"isRead", "categories", "flag", "inferenceClassification"}


# --- resolving ----------------------------------------------------------------------------


def _folder(context: Context, key: str) -> Folder:
    found = context.box.folder(key)
    if found is None and key.lower() in WELL_KNOWN:
        # A well-known folder the mailbox lacks (GraphEmulator.remove_folder).
        raise GraphError(
            404,
            "ErrorItemNotFound",
            f"The specified object was not found in the store., Default folder {key} not found.",
        )
    if found is None:
        raise item_not_found() if looks_like_id(key) else id_malformed()
    return found


def _message(context: Context, key: str) -> Message:
    found = context.box.message(key)
    if found is None:
        raise item_not_found() if looks_like_id(key) else id_malformed()
    return found


def _body(context: Context) -> dict[str, Any]:
    data = context.call.json()
    if not isinstance(data, dict):
        raise bad_request("Empty Payload. JSON content expected.")
    return data


def _render(
    context: Context,
    message: Message,
    select: tuple[str, ...] | None = None,
    expand: tuple[str, ...] = (),
) -> Any:
    return message_json(
        context.box,
        message,
        immutable=context.immutable,
        select=select,
        text_body=context.text_body,
        expand=expand,
    )


def _fault(context: Context, message: Message, operation: str) -> None:
    """The failure ``faults.fail_message`` set for this operation on this message."""
    failure = context.emulator.faults.message_fault(message.immutable_id, operation)
    if failure is not None:
        raise failure


def _select(context: Context) -> tuple[str, ...] | None:
    query = odata.parse(
        {"$select": context.call.args.get("$select", "")}, MESSAGE_PROPERTIES, "Message", None
    )
    return query.select


# --- messages -----------------------------------------------------------------------------


def list_messages(context: Context, keys: list[str]) -> Response:
    """user-list-messages.md: default page 10, $top 1-1000, follow the whole nextLink."""
    box = context.box
    query = odata.parse(context.call.args, MESSAGE_PROPERTIES, "Message", "receivedDateTime")
    faults = context.emulator.faults
    slow = faults.timeout_without_select
    if slow is not None and query.select is None and query.top > slow:
        raise GraphError(504, "GatewayTimeout", "The gateway did not receive a response in time.")
    if faults.refuse_expand and query.expand:
        raise bad_request("Parsing OData Select and Expand failed: expand is not supported here.")
    with context.emulator.store.lock:
        if keys:
            folder = _folder(context, keys[0])
            items = sorted(box.in_folder(folder), key=lambda m: m.seq)
            where = f"mailFolders('{quote(keys[0])}')/messages"
            url = f"{context.prefix}/mailFolders/{quote(keys[0])}/messages"
        else:
            hidden = {f.id for f in box.folders.values() if f.hidden}
            items = sorted(
                (m for m in box.messages.values() if m.folder_id not in hidden),
                key=lambda m: m.seq,
            )
            where, url = "messages", f"{context.prefix}/messages"
        chunk, next_link = odata.page(
            items,
            query,
            message_value,
            url,
            interleave=faults.interleave,
            cap=faults.page_cap,
            drop=faults.take_drop,
        )
        values = [_render(context, m, query.select, query.expand) for m in chunk]
    selected = f"({','.join(query.select)})" if query.select else ""
    body: dict[str, Any] = {
        "@odata.context": f"{context.context_prefix}/{where}{selected}",
        "value": values,
    }
    if next_link:
        body["@odata.nextLink"] = next_link
    return context.json(body)


def get_message(context: Context, keys: list[str]) -> Response:
    """message-get.md."""
    select = _select(context)
    with context.emulator.store.lock:
        message = _message(context, keys[-1])
        body = _render(context, message, select)
    return context.json({"@odata.context": f"{context.context_prefix}/messages/$entity", **body})


def raw_message(context: Context, keys: list[str]) -> Response:
    """message-get.md, "Get MIME content": the MIME, ``Content-type: text/plain``."""
    with context.emulator.store.lock:
        message = _message(context, keys[-1])
        _fault(context, message, "value")
        raw = message.raw
    large = context.emulator.faults.large_values
    if large is not None and len(raw) > large.above:
        time.sleep(large.after)
        if large.fault == "504":
            raise GraphError(
                504, "GatewayTimeout", "The gateway did not receive a response in time."
            )
        # The connection closes with nothing answered, as a front end that gave up closes
        # it: the client reads the end of the connection where the answer should be.
        return Dropped(context.emulator.abort)
    return Response(raw, 200, headers={"content-type": "text/plain"})


def patch_message(context: Context, keys: list[str]) -> Response:
    """message-update.md: 200 with the updated message."""
    data = _body(context)
    refused = sorted(set(data) - UPDATABLE)
    if refused:
        raise bad_request(
            f"The property '{refused[0]}' can only be updated while the message is a draft."
        )
    with context.emulator.store.lock:
        message = _message(context, keys[-1])
        _fault(context, message, "patch")
        if "isRead" in data:
            if not isinstance(data["isRead"], bool):
                raise bad_request("Cannot convert the literal to the expected type 'Edm.Boolean'.")
            message.is_read = data["isRead"]
        if "categories" in data:
            message.categories = [str(c) for c in data["categories"] or []]
        if isinstance(data.get("flag"), dict):
            message.flag = dict(data["flag"])
        if data.get("inferenceClassification") in ("focused", "other"):
            message.inference = str(data["inferenceClassification"])
        context.box.changed(message)
        body = _render(context, message)
    return context.json({"@odata.context": f"{context.context_prefix}/messages/$entity", **body})


def move_message(context: Context, keys: list[str]) -> Response:
    """message-move.md: 201 Created with the moved message (a new id unless immutable)."""
    destination = _body(context).get("destinationId")
    if not isinstance(destination, str) or not destination:
        raise bad_request("The destinationId parameter is required.", "ErrorInvalidParameter")
    with context.emulator.store.lock:
        message = _message(context, keys[-1])
        _fault(context, message, "move")
        target = _folder(context, destination)
        context.box.place(message, target)
        message.touch()
        body = _render(context, message)
    return context.json(
        {"@odata.context": f"{context.context_prefix}/messages/$entity", **body}, 201
    )


def delete_message(context: Context, keys: list[str]) -> Response:
    """message-delete.md: 204. The page does not say where the message goes (docs issue
    microsoft-graph-docs-contrib#285); like Outlook, it moves to Deleted Items, and a message
    deleted from Deleted Items goes to the hidden Recoverable Items deletions folder."""
    with context.emulator.store.lock:
        box = context.box
        message = _message(context, keys[-1])
        _fault(context, message, "delete")
        deleted = box.folder("deleteditems")
        assert deleted is not None
        if message.folder_id == deleted.id:
            target = box.folder("recoverableitemsdeletions")
            assert target is not None
        else:
            target = deleted
        box.place(message, target)
        message.touch()
    return Response(status_code=204)


def permanent_delete(context: Context, keys: list[str]) -> Response:
    """message-permanentdelete.md: 204, gone from the client's view."""
    with context.emulator.store.lock:
        context.box.remove(_message(context, keys[-1]))
    return Response(status_code=204)


# --- folders ------------------------------------------------------------------------------


def list_folders(context: Context, keys: list[str]) -> Response:
    """user-list-mailfolders.md / mailfolder-list-childfolders.md: default page 10,
    ``includeHiddenFolders=true`` adds hidden folders."""
    box = context.box
    query = odata.parse(context.call.args, FOLDER_PROPERTIES, "MailFolder", None)
    hidden = context.call.args.get("includeHiddenFolders", "").lower() == "true"
    with context.emulator.store.lock:
        parent = _folder(context, keys[0]) if keys else box.root()
        folders = box.children(parent, hidden=hidden)
        if keys:
            where = f"mailFolders('{quote(keys[0])}')/childFolders"
            url = f"{context.prefix}/mailFolders/{quote(keys[0])}/childFolders"
        else:
            where, url = "mailFolders", f"{context.prefix}/mailFolders"

        def value(folder: Folder, name: str) -> Any:
            return folder_value(box, folder, name)

        chunk, next_link = odata.page(folders, query, value, url)
        values = [folder_json(box, f, query.select) for f in chunk]
    body: dict[str, Any] = {"@odata.context": f"{context.context_prefix}/{where}", "value": values}
    if next_link:
        body["@odata.nextLink"] = next_link
    return context.json(body)


def get_folder(context: Context, keys: list[str]) -> Response:
    """mailfolder-get.md; a well-known name works in place of the id."""
    with context.emulator.store.lock:
        folder = _folder(context, keys[0])
        body = folder_json(context.box, folder, None)
    return context.json({"@odata.context": f"{context.context_prefix}/mailFolders/$entity", **body})


def create_folder(context: Context, keys: list[str]) -> Response:
    """user-post-mailfolders.md / mailfolder-post-childfolders.md: 201 Created."""
    name = _body(context).get("displayName")
    if not isinstance(name, str) or not name.strip():
        raise bad_request("The displayName property is required.", "ErrorInvalidParameter")
    store = context.emulator.store
    with store.lock:
        box = context.box
        parent = _folder(context, keys[0]) if keys else box.root()
        if any(f.display_name.lower() == name.lower() for f in box.children(parent, hidden=True)):
            raise GraphError(
                409, "ErrorFolderExists", "A folder with the specified name already exists."
            )
        folder = store.add_folder(box, name, parent)
        body = folder_json(box, folder, None)
    return context.json(
        {"@odata.context": f"{context.context_prefix}/mailFolders/$entity", **body}, 201
    )
