"""The dashboard (which mailboxes import, which need a person, and why) and the import log."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from mailintake.enums import AuthState
from mailintake.status import mailbox_status
from mailintake.store import imports
from mailintake.web.deps import StoreDep
from mailintake.web.ui.render import page
from mailintake.web.ui.tokens_view import token_info

router = APIRouter(include_in_schema=False)

NEEDS_A_PERSON = (
    AuthState.NOT_AUTHORIZED,
    AuthState.REAUTHORIZATION_REQUIRED,
    AuthState.PASSWORD_UPDATE_REQUIRED,
)


@router.get("/")
def dashboard(request: Request, store: StoreDep) -> HTMLResponse:
    with store.read() as repo:
        rows = mailbox_status(repo)
        for row in rows:
            row["tokens"] = token_info(repo, row["name"])
        recent = imports.recent(repo.conn, None, 20)
    attention = [r for r in rows if r["authorization_state"] in NEEDS_A_PERSON or r["last_error"]]
    context = {
        "nav": "dashboard",
        "rows": rows,
        "attention": attention,
        "recent": recent,
        "totals": {k: sum(r[k] for r in rows) for k in ("imported", "failed", "pending")},
    }
    return page(request, "dashboard.html", context)


@router.get("/imports")
def import_log(
    request: Request, store: StoreDep, mailbox: str | None = None, status: str | None = None
) -> HTMLResponse:
    with store.read() as repo:
        names = [r.spec.name for r in repo.list_mailboxes()]
        chosen = mailbox if mailbox in names else None
        rows = imports.recent(repo.conn, chosen, 500)
    if status == "failed":
        rows = [r for r in rows if r["status"] == "failed"]
    context = {
        "nav": "imports",
        "rows": rows,
        "names": names,
        "mailbox": chosen,
        "status": status,
    }
    return page(request, "imports.html", context)
