"""The dashboard (each mailbox's health at a glance: which need a person, which fail or lag,
why, since when and what to do; known ends ahead; imports and failures per hour) and the
import log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from mailintake.enums import Health
from mailintake.health import refresh
from mailintake.health.rules import ORDER
from mailintake.status import mailbox_status
from mailintake.store import import_views
from mailintake.store.health import activity
from mailintake.web.deps import StoreDep
from mailintake.web.ui.activity_chart import HOURS, chart, hourly
from mailintake.web.ui.render import page
from mailintake.web.ui.tokens_view import token_info

router = APIRouter(include_in_schema=False)

# What the dashboard lists first: a person is needed, then failing, then lagging.
ATTENTION = (Health.NEEDS_PERSON, Health.FAILING, Health.LAGGING)


@router.get("/")
def dashboard(request: Request, store: StoreDep) -> HTMLResponse:
    now = datetime.now(UTC)
    refresh(store, now)  # a health that changed since is recorded with when it began
    with store.read() as repo:
        rows = mailbox_status(repo, now)
        for row in rows:
            row["tokens"] = token_info(repo, row["name"])
        recent = import_views.recent(repo.conn, None, 20)
        done = activity(repo.conn, now - timedelta(hours=HOURS))
    attention = sorted(
        (r for r in rows if r["health"] in ATTENTION),
        key=lambda r: (ATTENTION.index(Health(r["health"])), r["name"]),
    )
    ends = sorted(
        (r for r in rows if r["next_expiry"] and r["next_expiry"]["state"]),
        key=lambda r: str(r["next_expiry"]["ends_at"]),
    )
    counts = {str(h): sum(1 for r in rows if r["health"] == h) for h in ORDER}
    context = {
        "nav": "dashboard",
        "rows": rows,
        "attention": attention,
        "ends": ends,
        "health_counts": counts,
        "chart": chart(hourly(done, now)),
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
        rows = import_views.recent(repo.conn, chosen, 500)
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
