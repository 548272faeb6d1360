"""``/imports`` (what was imported, what failed and why) and "Poll now"."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from mailintake.engine.check import check_mailbox
from mailintake.engine.poll import Poller
from mailintake.failed_messages import act, listing
from mailintake.store import import_views
from mailintake.web.deps import StoreDep, services

router = APIRouter(tags=["imports"])


@router.get("/imports", summary="Recent imports and failures, newest first")
def recent(store: StoreDep, mailbox: str | None = None, limit: int = 50) -> dict[str, Any]:
    with store.read() as repo:
        if mailbox is not None:
            repo.get_mailbox(mailbox)  # 404 for an unknown name
        return {"imports": import_views.recent(repo.conn, mailbox, max(1, min(limit, 500)))}


@router.get(
    "/mailboxes/{name}/messages",
    summary="Messages that could not be imported: failed, parked, skipped",
)
def messages(store: StoreDep, name: str) -> dict[str, Any]:
    return {"mailbox": name, "messages": listing(store, name)}


@router.post(
    "/mailboxes/{name}/messages/{key}/retry",
    summary="Try a failed, parked or skipped message again at the next pass",
)
def retry_message(store: StoreDep, name: str, key: str) -> dict[str, Any]:
    return {"mailbox": name, "message": act(store, name, key, "retry")}


@router.post(
    "/mailboxes/{name}/messages/{key}/skip",
    summary="Never import a failed or parked message, never try it again",
)
def skip_message(store: StoreDep, name: str, key: str) -> dict[str, Any]:
    return {"mailbox": name, "message": act(store, name, key, "skip")}


@router.post("/mailboxes/{name}/poll", summary="Poll now: one import pass")
def poll_now(request: Request, store: StoreDep, name: str) -> dict[str, object]:
    with store.read() as repo:
        repo.get_mailbox(name)
    settings = request.app.state.settings
    return Poller(store, settings.home, runtime=services(request).runtime).poll(name).as_dict()


@router.post("/mailboxes/{name}/check", summary="Token, sign-in and folder, changing nothing")
def check(store: StoreDep, name: str) -> dict[str, object]:
    return check_mailbox(store, name).as_dict()
