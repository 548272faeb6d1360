"""Add and edit a mailbox: its settings and OAuth settings, with every field shown as the
matrix says for the chosen grant, and every problem beside its field."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from mailintake.config.matrix import GRAPH_SERVER, Protocol
from mailintake.errors import ConfigError, Conflict, NotFound
from mailintake.services.edit import current_item, put_item
from mailintake.store.repo import Store
from mailintake.web.api.oauth import CALLBACK
from mailintake.web.deps import EnvDep, StoreDep
from mailintake.web.ui import oauth_fields
from mailintake.web.ui.form_data import (
    field_errors,
    mailbox_of,
    shown_again,
    stored_secrets,
    values_of,
)
from mailintake.web.ui.notices import notice_url
from mailintake.web.ui.render import go, page

router = APIRouter(include_in_schema=False)

# Changing one of these fills the endpoints and scopes in again from the server.
REPOPULATE = {
    "protocol",
    "oauth.authorization_server",
    "oauth.grant_type",
    "shared_mailbox",
    "reset",
}


async def _form(request: Request) -> dict[str, str]:
    return {k: v for k, v in (await request.form()).items() if isinstance(v, str)}


def _context(
    request: Request,
    store: Store,
    values: dict[str, str],
    *,
    editing: str | None,
    stored: set[str],
    repopulate: bool = False,
    problems: list[str] | None = None,
) -> dict[str, Any]:
    with store.read() as repo:
        servers = {s.name: s for s in repo.list_servers()}
        outputs = [o.name for o in repo.list_outputs()]
    protocol = oauth_fields.protocol_of(values.get("protocol"))
    grant = oauth_fields.grant_of(values.get("oauth.grant_type"), protocol)
    server = oauth_fields.server_of(values.get("oauth.authorization_server"), protocol, servers)
    values = {
        **values,
        "protocol": protocol.value,
        "oauth.grant_type": grant.value,
        "oauth.authorization_server": server.name,
    }
    populated = oauth_fields.populated_values(
        server, protocol, grant, shared=bool(values.get("shared_mailbox"))
    )
    for key, value in populated.items():
        if repopulate or not values.get(key):
            values[key] = value
    errors, general = field_errors(problems or [])
    return {
        "values": values,
        "editing": editing,
        "stored": stored,
        "protocols": [p.value for p in Protocol],
        "graph": protocol is Protocol.GRAPH,
        "graph_server": GRAPH_SERVER,
        "graph_servers": oauth_fields.graph_servers(servers),
        "graph_url_default": oauth_fields.graph_url_default(server),
        "servers": sorted(servers),
        "outputs": outputs,
        "grants": oauth_fields.grants_for(protocol),
        "fields": oauth_fields.fields(grant, server),
        "populated": populated,
        "errors": errors,
        "general": general,
        "callback": str(request.base_url).rstrip("/") + CALLBACK,
    }


def _render(request: Request, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    partial = bool(request.headers.get("HX-Request"))
    name = "mailbox_form_body.html" if partial else "mailbox_form.html"
    # htmx swaps only successful answers: problems come back as 200 to it, 422 to a plain form
    return page(request, name, context, status_code=200 if partial else status)


@router.get("/mailboxes/new")
def new_mailbox(request: Request, store: StoreDep) -> HTMLResponse:
    values = {"protocol": "imap", "oauth.grant_type": "authorization_code", "enabled": "on"}
    values["oauth.redirect_uri"] = str(request.base_url).rstrip("/") + CALLBACK
    return _render(request, _context(request, store, values, editing=None, stored=set()))


@router.get("/mailboxes/{name}/edit")
def edit_mailbox(request: Request, store: StoreDep, name: str) -> HTMLResponse:
    item = current_item(store, "mailbox", name)
    context = _context(request, store, values_of(item), editing=name, stored=stored_secrets(item))
    return _render(request, context)


@router.post("/mailboxes/form")
async def refresh_form(request: Request, store: StoreDep) -> HTMLResponse:
    """The form again after protocol, server or grant changed (htmx)."""
    values = await _form(request)
    editing = values.pop("_editing", "") or None
    stored = stored_secrets(current_item(store, "mailbox", editing)) if editing else set()
    trigger = request.headers.get("HX-Trigger-Name", "")
    context = _context(
        request, store, values, editing=editing, stored=stored, repopulate=trigger in REPOPULATE
    )
    return page(request, "mailbox_form_body.html", context)


async def _save(request: Request, store: StoreDep, env: EnvDep, editing: str | None) -> Response:
    values = await _form(request)
    values.pop("_editing", None)
    stored = stored_secrets(current_item(store, "mailbox", editing)) if editing else set()
    if editing:
        values["name"] = editing
    shown = _context(request, store, values, editing=editing, stored=stored)
    data = mailbox_of(values, stored=stored, populated=shown["populated"])
    try:
        # validation runs in a worker thread, never on the event loop
        exists = editing is not None
        await run_in_threadpool(put_item, store, "mailbox", data, env, must_exist=exists)
    except ConfigError as exc:
        values = shown_again(values)
        shown = _context(
            request, store, values, editing=editing, stored=stored, problems=exc.problems
        )
        return _render(request, shown, 422)
    except (Conflict, NotFound) as exc:
        problems = [f"mailboxes[{values.get('name', '')}].name: {exc}"]
        shown = _context(request, store, values, editing=editing, stored=stored, problems=problems)
        return _render(request, shown, 409)
    return go(notice_url(f"/mailboxes/{data['name']}", "saved"), request)


@router.post("/mailboxes/new")
async def add_mailbox(request: Request, store: StoreDep, env: EnvDep) -> Response:
    return await _save(request, store, env, None)


@router.post("/mailboxes/{name}/edit")
async def save_mailbox(request: Request, store: StoreDep, env: EnvDep, name: str) -> Response:
    return await _save(request, store, env, name)
