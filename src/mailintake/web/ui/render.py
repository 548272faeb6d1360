"""The page templates and what every page shows: state labels, times, sizes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from mailintake.enums import AfterImport, AuthState
from mailintake.web.ui.notices import notice_text

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"

STATE_LABELS = {
    AuthState.NOT_AUTHORIZED: "not authorized",
    AuthState.AUTHORIZED: "authorized",
    AuthState.REAUTHORIZATION_REQUIRED: "authorize again",
    AuthState.PASSWORD_UPDATE_REQUIRED: "update the password",
    AuthState.ERROR: "error",
}


def when(value: datetime | str | None) -> str:
    if value is None:
        return "never"
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def size(value: int | None) -> str:
    if value is None:
        return ""
    number = float(value)
    for unit in ("B", "KB", "MB", "GB"):
        if number < 1024 or unit == "GB":
            return f"{number:.0f} {unit}" if unit == "B" else f"{number:.1f} {unit}"
        number /= 1024
    return str(value)  # pragma: no cover


def _templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(TEMPLATES))
    templates.env.filters["when"] = when
    templates.env.filters["size"] = size
    templates.env.globals["state_label"] = lambda s: STATE_LABELS.get(s, s)
    templates.env.globals["AuthState"] = AuthState
    templates.env.globals["after_import_choices"] = [
        (action.value, action.value.replace("_", " ")) for action in AfterImport
    ]
    return templates


templates = _templates()


def page(
    request: Request, name: str, context: dict[str, Any], status_code: int = 200
) -> HTMLResponse:
    names = context.pop("notice_names", ())
    context = {"notice": notice_text(request.query_params, names), **context}
    return templates.TemplateResponse(request, name, context, status_code=status_code)


def go(url: str, request: Request) -> RedirectResponse | HTMLResponse:
    """After a change: htmx follows HX-Redirect, a plain form follows 303."""
    if request.headers.get("HX-Request"):
        return HTMLResponse("", headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)
