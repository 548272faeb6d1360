"""The mailbox list, one mailbox's page (authorization, proxy, recent imports, messages that
could not be imported) and its actions: enable, disable, delete, poll now, test the proxy,
retry or skip a message."""

from __future__ import annotations

from typing import Any

import httpx2
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from mailintake.engine.graph_push import unsubscribe
from mailintake.engine.poll import Poller
from mailintake.errors import MailintakeError
from mailintake.failed_messages import act
from mailintake.net.http import build_client, translate
from mailintake.oauth.tokens import TokenManager, load_auth
from mailintake.services.edit import current_item, edit_item, effective_item
from mailintake.status import mailbox_status
from mailintake.store import import_views
from mailintake.web.deps import EnvDep, StoreDep, services
from mailintake.web.ui.notices import notice_url
from mailintake.web.ui.render import go, page
from mailintake.web.ui.tokens_view import token_info

router = APIRouter(include_in_schema=False)


@router.get("/mailboxes")
def list_mailboxes(request: Request, store: StoreDep) -> HTMLResponse:
    with store.read() as repo:
        rows = mailbox_status(repo)
    return page(request, "mailboxes.html", {"nav": "mailboxes", "rows": rows})


@router.get("/mailboxes/{name}")
def show_mailbox(request: Request, store: StoreDep, name: str) -> HTMLResponse:
    with store.read() as repo:
        repo.get_mailbox(name)
        row = next(r for r in mailbox_status(repo) if r["name"] == name)
        tokens = token_info(repo, name)
        recent = import_views.recent(repo.conn, name, 20)
        problems = import_views.problems(repo.conn, name, limit=100)
    item = current_item(store, "mailbox", name)
    context: dict[str, Any] = {
        "nav": "mailboxes",
        "row": row,
        "item": item,
        "effective": effective_item(store, name),
        "tokens": tokens,
        "recent": recent,
        "problems": problems,
    }
    return page(request, "mailbox.html", context)


@router.post("/mailboxes/{name}/enable")
def enable(request: Request, store: StoreDep, env: EnvDep, name: str) -> Response:
    edit_item(store, "mailbox", name, {"enabled": True}, [], env)
    return go(notice_url(f"/mailboxes/{name}", "enabled"), request)


@router.post("/mailboxes/{name}/disable")
def disable(request: Request, store: StoreDep, env: EnvDep, name: str) -> Response:
    edit_item(store, "mailbox", name, {"enabled": False}, [], env)
    return go(notice_url(f"/mailboxes/{name}", "disabled"), request)


@router.post("/mailboxes/{name}/delete")
def delete(request: Request, store: StoreDep, name: str) -> Response:
    unsubscribe(store, TokenManager(store), name)  # while its credentials are there
    with store.begin() as repo:
        repo.delete_mailbox(name)
    return go(notice_url("/mailboxes", "mailbox_deleted"), request)


@router.post("/mailboxes/{name}/poll")
def poll_now(request: Request, store: StoreDep, name: str) -> Response:
    with store.read() as repo:
        repo.get_mailbox(name)
    home = request.app.state.settings.home
    result = Poller(store, home, runtime=services(request).runtime).poll(name)
    counts = {"imported": result.imported, "skipped": result.skipped, "failed": result.failed}
    notice = "poll_failed" if result.error else "polled"
    return go(notice_url(f"/mailboxes/{name}", notice, **counts), request)


@router.post("/mailboxes/{name}/messages/{key}/retry")
def retry_message(request: Request, store: StoreDep, name: str, key: str) -> Response:
    act(store, name, key, "retry")
    return go(notice_url(f"/mailboxes/{name}", "message_retried"), request)


@router.post("/mailboxes/{name}/messages/{key}/skip")
def skip_message(request: Request, store: StoreDep, name: str, key: str) -> Response:
    act(store, name, key, "skip")
    return go(notice_url(f"/mailboxes/{name}", "message_skipped"), request)


@router.post("/mailboxes/{name}/proxy/test")
def test_proxy(request: Request, store: StoreDep, name: str) -> HTMLResponse:
    """Reach the token endpoint through the mailbox's proxy; any answer of the token server
    proves the way there works."""
    with store.read() as repo:
        auth = load_auth(repo, name)
    via = f"through {auth.proxy.display}" if auth.proxy else "directly (no proxy configured)"
    ok, text = True, ""
    try:
        with build_client(proxy=auth.proxy) as client:
            answer = client.post(auth.token_endpoint, data={"grant_type": "client_credentials"})
        text = (
            f"The token endpoint answered {via} (HTTP {answer.status_code}): the connection works."
        )
    except httpx2.HTTPError as exc:
        ok, text = False, str(translate(exc, "the token endpoint", auth.proxy))
    except MailintakeError as exc:
        ok, text = False, str(exc)
    return page(request, "proxy_result.html", {"ok": ok, "text": text})
