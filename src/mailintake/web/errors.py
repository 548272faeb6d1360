"""Errors become HTTP answers here, once: 422 with the same ``PATH: message`` list as the CLI."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from mailintake.errors import (
    AuthError,
    ConfigError,
    Conflict,
    DocumentTooLarge,
    MailintakeError,
    NotFound,
    RateLimited,
    SecretKeyError,
    TransientError,
)
from mailintake.observability.logging import get_logger

log = get_logger(__name__)

STATUS: list[tuple[type[MailintakeError], int]] = [
    (DocumentTooLarge, 413),
    (ConfigError, 422),
    (NotFound, 404),
    (Conflict, 409),
    (AuthError, 409),
    (RateLimited, 503),
    (TransientError, 502),
    (SecretKeyError, 500),
]


def _location(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    path = ""
    for part in parts:
        path += f"[{part}]" if part.isdigit() else (f".{part}" if path else part)
    return path or "(request)"


def problem_response(exc: MailintakeError) -> JSONResponse:
    status = next((code for kind, code in STATUS if isinstance(exc, kind)), 500)
    body: dict[str, Any] = {"error": type(exc).__name__, "detail": str(exc)}
    if isinstance(exc, ConfigError):
        body["problems"] = exc.problems
    if isinstance(exc, AuthError):
        body["authorization_state"] = exc.state
        body["code"] = exc.code
    headers = {}
    if isinstance(exc, RateLimited) and exc.retry_after:
        headers["Retry-After"] = str(int(exc.retry_after))
    return JSONResponse(body, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    async def on_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, MailintakeError)
        if not isinstance(exc, ConfigError | NotFound | Conflict):
            log.warning("api.error", path=request.url.path, error=str(exc))
        return problem_response(exc)

    async def on_invalid(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        problems = [f"{_location(tuple(e['loc']))}: {e['msg']}" for e in exc.errors()]
        return JSONResponse(
            {"error": "ConfigError", "detail": "\n".join(problems), "problems": problems},
            status_code=422,
        )

    app.add_exception_handler(MailintakeError, on_error)
    app.add_exception_handler(RequestValidationError, on_invalid)
