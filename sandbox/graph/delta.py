"""``GET …/mailFolders/{id}/messages/delta``: a folder's messages by Graph's delta query, as
Microsoft documents it (api-reference/v1.0/api/message-delta.md, "message: delta";
concepts/delta-query-messages.md, "Get incremental changes to messages in a folder";
concepts/delta-query-overview.md).

- A round is one or more GETs. Each answer carries either ``@odata.nextLink`` (a URL with a
  ``$skiptoken``: more of this round) or ``@odata.deltaLink`` (a URL with a ``$deltatoken``:
  the round is complete; saved, it starts the next round). The tokens are opaque; the
  query options of the round's first request ($select, $expand, $filter, $top, changeType)
  are encoded in them and need not be sent again ("Query parameters").
- The first round gives every message in the folder; a round from a ``$deltatoken`` gives
  what changed since: messages new in the folder (delivered, or moved in), messages changed
  there (read, flagged…: "One message was deleted and the other message was changed"), and
  for a message deleted or moved out, ``{"id": …, "@removed": {"reason": "deleted"}}``
  (delta-query-messages.md, "Synchronize messages in the same folder in the next round").
  With nothing changed, the answer is an empty ``value`` and the same ``@odata.deltaLink``
  (the example there gives the same token back).
- ``changeType`` (created, updated, deleted) keeps one kind of change in later rounds; the
  first round still gives every message ("Example 2").
- ``Prefer: odata.maxpagesize={x}`` sets the most messages per answer ("Optional request
  header"); without it ``$top``, else 10 (the size of a plain message list,
  user-list-messages.md; the delta pages do not give theirs).
- Only ``$filter=receivedDateTime ge|gt {value}`` is supported; no ``$search`` ("OData query
  parameters"). Graph's ``$orderby=receivedDateTime desc`` is not emulated (mailintake does
  not send it): the emulator answers 400, as to any option it does not know
  (sandbox.graph.odata). A round gives messages in the order they came to the folder.
- A token whose sync state is gone answers ``410 Gone`` with the error code
  ``syncStateNotFound`` (or ``resyncRequired``) and a ``Location`` header holding the
  round's first URL without a token (delta-query-overview.md, "Synchronization reset",
  "Token duration"; concepts/errors.md, "Code property"). Sync states live in a cache of
  limited size (sandbox.graph.journal.SyncStates); ``Faults.forget_sync_states`` drops them
  all, as Exchange does after maintenance or a migration.

Of the paging faults (sandbox.graph.faults), ``page_cap`` and ``drop_next_links`` apply to
delta rounds too: a dropped nextLink ends the round early with its deltaLink, so the rest of
the folder never comes — the worst a client can meet, for testing its defence (reported for
plain message lists; not reported for delta by name).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from starlette.responses import Response

from sandbox.graph import odata
from sandbox.graph.context import Context
from sandbox.graph.errors import GraphError, bad_request, id_malformed, item_not_found
from sandbox.graph.journal import SyncState
from sandbox.graph.model import Folder, Mailbox, Message, looks_like_id, regular_id
from sandbox.graph.render import MESSAGE_PROPERTIES, message_json

DEFAULT_PAGE = 10
CHANGE_TYPES = ("created", "updated", "deleted")
_QUERY = ("$select", "$expand", "$filter", "$top")
_PREFERRED_SIZE = re.compile(r"odata\.maxpagesize\s*=\s*\"?(\d+)", re.IGNORECASE)
_MESSAGE_TYPE = "#microsoft.graph.message"

Pending = tuple[tuple[str, str], ...]  # (immutable id, "created" | "updated" | "deleted")


def messages_delta(context: Context, keys: list[str]) -> Response:
    """One request of a round (see the module's docstring)."""
    store = context.emulator.store
    box = context.box
    with store.lock:
        folder = _folder(box, keys[0])
        args = context.call.args
        skip, delta = args.get("$skiptoken"), args.get("$deltatoken")
        if skip:
            state = _state(context, folder, skip)
            pending, offset, end = state.pending or (), state.offset, state.seq
        elif delta:
            state = _state(context, folder, delta)
            pending = _changes(box, folder, state)
            offset, end = 0, box.journal.seq
            if not pending:  # nothing changed: the same deltaLink again
                return _answer(context, folder, [], delta_token=delta)
        else:
            query = _query(args)
            if context.emulator.faults.refuse_expand and query["expand"]:
                raise bad_request(
                    "Parsing OData Select and Expand failed: expand is not supported here."
                )
            state = SyncState(
                box.address.lower(),
                folder.id,
                0,
                query,
                context.emulator.faults.sync_generation,
            )
            pending = _everything(box, folder, query)
            offset, end = 0, box.journal.seq
        faults = context.emulator.faults
        size = min(_page_size(context, state.query), faults.page_cap or odata.MAX_TOP)
        chunk = pending[offset : offset + size]
        values = [_render(context, box, folder, state.query, entry) for entry in chunk]
        if offset + size < len(pending) and not faults.take_drop():
            more = SyncState(
                state.mailbox, folder.id, end, state.query, state.generation, pending, offset + size
            )
            return _answer(context, folder, values, skip_token=store.sync_states.add(more))
        following = SyncState(state.mailbox, folder.id, end, state.query, state.generation)
        return _answer(context, folder, values, delta_token=store.sync_states.add(following))


def _folder(box: Mailbox, key: str) -> Folder:
    found = box.folder(key)
    if found is None:
        raise item_not_found() if looks_like_id(key) else id_malformed()
    return found


def _state(context: Context, folder: Folder, token: str) -> SyncState:
    """The sync state a token stands for, or 410 Gone when it is not kept (any more)."""
    state = context.emulator.store.sync_states.get(token)
    faults = context.emulator.faults
    if (
        state is None
        or state.generation != faults.sync_generation
        or state.mailbox != context.box.address.lower()
        or state.folder_id != folder.id
    ):
        code = faults.sync_state_code if state is not None else "syncStateNotFound"
        message = (
            "The delta token is no longer valid, and the app must reset the sync state."
            if code == "resyncRequired"
            else "The sync state generation is not found. The delta token is expired and "
            "data must be synchronized again."
        )
        restart = f"{_url(context, folder)}?$deltatoken="
        raise GraphError(410, code, message, {"Location": restart})
    return state


def _query(args: Mapping[str, str]) -> dict[str, Any]:
    """The options of a round's first request, checked as delta allows them."""
    for name in args:
        if name.startswith("$") and name not in (*_QUERY, "$deltatoken", "$skiptoken"):
            raise bad_request(
                f"The query parameter '{name}' is not supported by the emulator's delta."
            )
    parsed = odata.parse(
        {k: v for k, v in args.items() if k in _QUERY}, MESSAGE_PROPERTIES, "Message", None
    )
    after = None
    for clause in parsed.clauses:
        if clause.name != "receivedDateTime" or clause.op not in ("ge", "gt") or after:
            raise bad_request(
                "Delta supports only $filter=receivedDateTime ge {value} or gt {value}."
            )
        after = (clause.op, clause.value)
    change_type = args.get("changeType")
    if change_type is not None and change_type not in CHANGE_TYPES:
        raise bad_request(f"Invalid changeType '{change_type}': created, updated or deleted.")
    return {
        "select": parsed.select,
        "expand": parsed.expand,
        "after": after,
        "top": parsed.top if args.get("$top") else None,
        "change_type": change_type,
    }


def _page_size(context: Context, query: dict[str, Any]) -> int:
    found = _PREFERRED_SIZE.search(", ".join(context.call.headers.getlist("Prefer")))
    if found is not None and int(found.group(1)) > 0:
        return min(int(found.group(1)), odata.MAX_TOP)
    return int(query["top"] or DEFAULT_PAGE)


def _wanted(message: Message, query: dict[str, Any]) -> bool:
    after = query["after"]
    if after is None:
        return True
    op, value = after
    return bool(message.received >= value if op == "ge" else message.received > value)


def _everything(box: Mailbox, folder: Folder, query: dict[str, Any]) -> Pending:
    """The first round: every message of the folder (as ``$filter`` keeps them)."""
    found = sorted((m for m in box.in_folder(folder) if _wanted(m, query)), key=lambda m: m.seq)
    return tuple((m.immutable_id, "created") for m in found)


def _changes(box: Mailbox, folder: Folder, state: SyncState) -> Pending:
    """What changed in the folder since the state's journal number, one entry a message in
    the order of its first change: new there (delivered, or moved in — moved out and back
    too, as Exchange makes a new item in the folder a move goes to), changed there, or gone
    from there."""
    places: dict[str, list[str | None]] = {}  # where each message was before each change
    for change in box.journal.since(state.seq):
        places.setdefault(change.message_id, []).append(change.before)
    wanted = state.query["change_type"]
    found: list[tuple[str, str]] = []
    for message_id, befores in places.items():
        message = box.messages.get(message_id)
        where = [*befores, message.folder_id if message is not None else None]
        left = any(a == folder.id != b for a, b in itertools.pairwise(where))
        here, was = where[-1] == folder.id, where[0] == folder.id
        if here:
            kind = "updated" if was and not left else "created"
        elif was:
            kind = "deleted"
        else:
            continue
        if wanted is not None and kind != wanted:
            continue
        if message is not None and kind != "deleted" and not _wanted(message, state.query):
            continue
        found.append((message_id, kind))
    return tuple(found)


def _render(
    context: Context, box: Mailbox, folder: Folder, query: dict[str, Any], entry: tuple[str, str]
) -> dict[str, Any]:
    message_id, kind = entry
    message = box.messages.get(message_id)
    if kind == "deleted" or message is None or message.folder_id != folder.id:
        shown = message_id if context.immutable else regular_id(message_id, folder.id)
        return {"@odata.type": _MESSAGE_TYPE, "id": shown, "@removed": {"reason": "deleted"}}
    body = message_json(
        box,
        message,
        immutable=context.immutable,
        select=query["select"],
        text_body=context.text_body,
        expand=query["expand"],
    )
    return {"@odata.type": _MESSAGE_TYPE, **body}


def _url(context: Context, folder: Folder) -> str:
    # Graph writes its links with the key syntax: mailfolders('{id}')/messages/delta.
    return f"{context.prefix}/mailFolders('{quote(folder.id, safe='=')}')/messages/delta"


def _answer(
    context: Context,
    folder: Folder,
    values: list[dict[str, Any]],
    *,
    skip_token: str | None = None,
    delta_token: str | None = None,
) -> Response:
    metadata = context.context_prefix.split("#", 1)[0]
    body: dict[str, Any] = {"@odata.context": f"{metadata}#Collection(message)"}
    if skip_token is not None:
        body["@odata.nextLink"] = f"{_url(context, folder)}?$skiptoken={skip_token}"
    else:
        body["@odata.deltaLink"] = f"{_url(context, folder)}?$deltatoken={delta_token}"
    body["value"] = values
    return context.json(body)


__all__ = ["messages_delta"]
