"""``/servers``, ``/outputs`` and ``/mailboxes``: the same operations and validation as the CLI."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, status
from pydantic import BaseModel, ConfigDict, Field

from mailintake.engine.graph_push import unsubscribe
from mailintake.errors import ConfigError
from mailintake.net.http import build_client
from mailintake.oauth.discovery import discover
from mailintake.oauth.tokens import TokenManager
from mailintake.services.edit import (
    current_item,
    delete_item,
    edit_item,
    effective_item,
    list_items,
    put_item,
)
from mailintake.store.repo import Change, Store
from mailintake.web.api.documents import DocumentRoute
from mailintake.web.deps import EnvDep, StoreDep

PATHS = {"server": "servers", "output": "outputs", "mailbox": "mailboxes"}
TAGS = {"server": "authorization servers", "output": "outputs", "mailbox": "mailboxes"}

ItemBody = Body(
    description="The item's fields exactly as in the configuration file "
    "(secrets: a literal, `${env:NAME}`, or `<redacted>` to keep the stored one)."
)


class Patch(BaseModel):
    """Fields to change, by dotted path (``oauth.client_id``), and fields to remove."""

    model_config = ConfigDict(extra="forbid")

    set: dict[str, Any] = Field(default_factory=dict, examples=[{"oauth.client_id": "…"}])
    unset: list[str] = Field(default_factory=list, examples=[["oauth.tenant_id"]])


class ChangeOut(BaseModel):
    kind: str
    name: str
    action: str
    item: dict[str, Any] | None = None


class Issuer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    issuer: str = Field(examples=["https://login.example.com/realms/mail"])


def _change(store: Store, kind: str, change: Change) -> ChangeOut:
    item = None if change.action == "deleted" else current_item(store, kind, change.name)
    return ChangeOut(kind=change.kind, name=change.name, action=change.action, item=item)


def _named(kind: str, name: str, data: dict[str, Any]) -> dict[str, Any]:
    given = data.get("name", name)
    if given != name:
        raise ConfigError(
            [f"{PATHS[kind]}[{name}].name: '{given}' differs from the name in the URL"]
        )
    return {**data, "name": name}


def router_for(kind: str) -> APIRouter:
    base = f"/{PATHS[kind]}"
    router = APIRouter(prefix=base, tags=[TAGS[kind]], route_class=DocumentRoute)

    @router.get("", summary=f"List {TAGS[kind]}")
    def list_all(store: StoreDep) -> list[dict[str, Any]]:
        return list_items(store, kind)

    @router.get("/{name}", summary="Show one (file form, secrets redacted)")
    def show(store: StoreDep, name: str) -> dict[str, Any]:
        return current_item(store, kind, name)

    @router.post("", status_code=status.HTTP_201_CREATED, summary="Add one")
    def add(store: StoreDep, env: EnvDep, data: dict[str, Any] = ItemBody) -> ChangeOut:
        if not isinstance(data.get("name"), str):
            raise ConfigError([f"{PATHS[kind]}[?].name: required"])
        return _change(store, kind, put_item(store, kind, data, env, must_exist=False))

    @router.put("/{name}", summary="Replace one (validated whole)")
    def replace(
        store: StoreDep, env: EnvDep, name: str, data: dict[str, Any] = ItemBody
    ) -> ChangeOut:
        change = put_item(store, kind, _named(kind, name, data), env, must_exist=True)
        return _change(store, kind, change)

    @router.patch("/{name}", summary="Change fields by dotted path (validated whole)")
    def patch(store: StoreDep, env: EnvDep, name: str, body: Patch) -> ChangeOut:
        if not body.set and not body.unset:
            raise ConfigError([f"{PATHS[kind]}[{name}]: nothing to change (give set or unset)"])
        return _change(store, kind, edit_item(store, kind, name, body.set, body.unset, env))

    @router.delete("/{name}", summary="Delete one (refused while in use)")
    def delete(store: StoreDep, name: str) -> ChangeOut:
        if kind == "mailbox":  # its Graph subscription, while its credentials are there
            unsubscribe(store, TokenManager(store), name)
        return _change(store, kind, delete_item(store, kind, name))

    if kind == "server":

        @router.post("/discover", summary="Endpoints from an issuer's metadata (changes nothing)")
        def discover_endpoints(body: Issuer) -> dict[str, str]:
            with build_client() as client:
                return discover(body.issuer, client)

        @router.post("/{name}/reset", summary="Reset a built-in server to its shipped values")
        def reset(store: StoreDep, name: str) -> ChangeOut:
            with store.begin() as repo:
                change = repo.reset_server(name)
            return _change(store, kind, change)

    if kind == "mailbox":

        @router.get("/{name}/effective", summary="Settings in use, defaults filled in")
        def effective(store: StoreDep, name: str) -> dict[str, Any]:
            return effective_item(store, name)

        @router.post("/{name}/enable", summary="Poll this mailbox again")
        def enable(store: StoreDep, env: EnvDep, name: str) -> ChangeOut:
            return _change(store, kind, edit_item(store, kind, name, {"enabled": True}, [], env))

        @router.post("/{name}/disable", summary="Stop polling (settings and tokens are kept)")
        def disable(store: StoreDep, env: EnvDep, name: str) -> ChangeOut:
            return _change(store, kind, edit_item(store, kind, name, {"enabled": False}, [], env))

    return router
