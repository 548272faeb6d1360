"""``/imports`` (what was imported, what failed and why) and "Poll now"."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from mailintake.engine.check import check_mailbox
from mailintake.engine.poll import Poller
from mailintake.store import imports
from mailintake.web.deps import StoreDep

router = APIRouter(tags=["imports"])


@router.get("/imports", summary="Recent imports and failures, newest first")
def recent(store: StoreDep, mailbox: str | None = None, limit: int = 50) -> dict[str, Any]:
    with store.read() as repo:
        if mailbox is not None:
            repo.get_mailbox(mailbox)  # 404 for an unknown name
        return {"imports": imports.recent(repo.conn, mailbox, max(1, min(limit, 500)))}


@router.post("/mailboxes/{name}/poll", summary="Poll now: one import pass")
def poll_now(request: Request, store: StoreDep, name: str) -> dict[str, object]:
    with store.read() as repo:
        repo.get_mailbox(name)
    settings = request.app.state.settings
    return Poller(store, settings.home).poll(name).as_dict()


@router.post("/mailboxes/{name}/check", summary="Token, sign-in and folder, changing nothing")
def check(store: StoreDep, name: str) -> dict[str, object]:
    return check_mailbox(store, name).as_dict()
