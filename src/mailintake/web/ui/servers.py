"""Manage authorization servers: add, edit, delete (refused while in use), reset a built-in
one, and fill the endpoints in from an issuer's discovery document."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from mailintake.config.matrix import Protocol
from mailintake.errors import ConfigError, Conflict, MailintakeError, NotFound
from mailintake.net.http import build_client
from mailintake.oauth.discovery import discover
from mailintake.services.edit import put_item
from mailintake.services.export import server_dict
from mailintake.web.deps import EnvDep, StoreDep
from mailintake.web.ui.form_data import field_errors, shown_again
from mailintake.web.ui.notices import notice_url
from mailintake.web.ui.render import go, page

router = APIRouter(include_in_schema=False)

ENDPOINTS = ("issuer", "authorization_endpoint", "token_endpoint", "device_authorization_endpoint")
SCOPE_KINDS = ("scopes", "app_scopes")


def _values(data: dict[str, Any]) -> dict[str, str]:
    out = {k: str(data[k]) for k in ("name", *ENDPOINTS) if data.get(k)}
    for kind in SCOPE_KINDS:
        for protocol, scopes in (data.get(kind) or {}).items():
            out[f"{kind}.{protocol}"] = " ".join(scopes)
    return out


def _server_of(form: dict[str, str]) -> dict[str, Any]:
    data: dict[str, Any] = {
        k: form[k].strip() for k in ("name", *ENDPOINTS) if form.get(k, "").strip()
    }
    for kind in SCOPE_KINDS:
        scopes = {
            p.value: form.get(f"{kind}.{p.value}", "").split()
            for p in Protocol
            if form.get(f"{kind}.{p.value}", "").strip()
        }
        if scopes:
            data[kind] = scopes
    return data


def _render(
    request: Request,
    values: dict[str, str],
    editing: str | None,
    problems: list[str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    known = {"name", *ENDPOINTS} | {f"{k}.{p.value}" for k in SCOPE_KINDS for p in Protocol}
    errors, general = field_errors(problems or [], known)
    context = {
        "nav": "servers",
        "values": values,
        "editing": editing,
        "errors": errors,
        "general": general,
        "protocols": [p.value for p in Protocol],
    }
    return page(request, "server_form.html", context, status_code=status)


@router.get("/servers")
def list_servers(request: Request, store: StoreDep) -> HTMLResponse:
    return _list(request, store)


def _list(
    request: Request, store: StoreDep, notice: str | None = None, status: int = 200
) -> HTMLResponse:
    """The server list; ``notice`` (a refusal, made here) replaces the address's notice."""
    with store.read() as repo:
        servers = repo.list_servers()
        rows = [
            {
                "server": s,
                "edited": repo.server_is_edited(s.name),
                "used_by": repo.servers_in_use(s.name),
            }
            for s in servers
        ]
    context: dict[str, Any] = {
        "nav": "servers",
        "rows": rows,
        "notice_names": [s.name for s in servers],
    }
    if notice is not None:
        context["notice"] = notice
    return page(request, "servers.html", context, status_code=status)


@router.get("/servers/new")
def new_server(request: Request) -> HTMLResponse:
    return _render(request, {}, None)


@router.get("/servers/{name}/edit")
def edit_server(request: Request, store: StoreDep, name: str) -> HTMLResponse:
    with store.read() as repo:
        data = server_dict(repo.get_server(name))
    return _render(request, _values(data), name)


async def _save(request: Request, store: StoreDep, env: EnvDep, editing: str | None) -> Response:
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    if editing:
        form["name"] = editing
    try:
        # validation runs in a worker thread, never on the event loop
        await run_in_threadpool(
            put_item, store, "server", _server_of(form), env, must_exist=editing is not None
        )
    except ConfigError as exc:
        return _render(request, shown_again(form), editing, exc.problems, 422)
    except (Conflict, NotFound) as exc:
        return _render(request, form, editing, [f"name: {exc}"], 409)
    return go(notice_url("/servers", "server_saved", name=form.get("name", "")), request)


@router.post("/servers/new")
async def add_server(request: Request, store: StoreDep, env: EnvDep) -> Response:
    return await _save(request, store, env, None)


@router.post("/servers/{name}/edit")
async def save_server(request: Request, store: StoreDep, env: EnvDep, name: str) -> Response:
    return await _save(request, store, env, name)


@router.post("/servers/discover")
async def discover_server(request: Request) -> HTMLResponse:
    """The form again with the endpoints of the issuer's discovery document."""
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    editing = form.pop("_editing", "") or None
    problems: list[str] = []
    try:
        with build_client() as client:
            found = discover(form.get("issuer", "").strip(), client)
        form.update({k: v for k, v in found.items() if k in ENDPOINTS})
    except MailintakeError as exc:
        problems = [f"issuer: {exc}"]
    return _render(request, form, editing, problems)


@router.post("/servers/{name}/delete")
def delete_server(request: Request, store: StoreDep, name: str) -> Response:
    try:
        with store.begin() as repo:
            repo.delete_server(name)
    except (Conflict, ConfigError) as exc:
        return _list(request, store, f"Not deleted: {exc}", 409)
    return go(notice_url("/servers", "server_deleted"), request)


@router.post("/servers/{name}/reset")
def reset_server(request: Request, store: StoreDep, name: str) -> Response:
    try:
        with store.begin() as repo:
            repo.reset_server(name)
    except (Conflict, ConfigError) as exc:
        return _list(request, store, f"Not reset: {exc}", 409)
    return go(notice_url("/servers", "server_reset", name=name), request)
