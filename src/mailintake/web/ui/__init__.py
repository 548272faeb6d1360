"""The web admin: server-rendered pages (Jinja2 + htmx) over the same functions as the API."""

from __future__ import annotations

from fastapi import APIRouter

from mailintake.web.ui import dashboard, mailbox_form, mailboxes, servers


def routers() -> list[APIRouter]:
    return [dashboard.router, mailbox_form.router, mailboxes.router, servers.router]
