"""Request bodies that are configuration documents, or items of one: read with the limits of
``config/limits.py`` before FastAPI sees them.

``read_body`` refuses a body past ``MAX_DOCUMENT_BYTES`` (413) while it arrives.
``DocumentRoute`` does that for a route whose body FastAPI parses as JSON, and parses it
itself, in a worker thread, with the JSON reader of the configuration (depth, values, keys
given twice): a refused body is a 422 with ``PATH: message`` lines, like any invalid document.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from mailintake.config.json_loader import load_json_text
from mailintake.config.limits import MAX_DOCUMENT_BYTES, too_large
from mailintake.errors import ConfigError, DocumentTooLarge


async def read_limited(request: Request, limit: int) -> bytes | None:
    """The request's body, or None as soon as it is known to be over ``limit`` bytes (by its
    Content-Length, or while it arrives: the rest is not read)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def read_body(request: Request) -> bytes:
    """The request's body, refused once it grows past what a document may be."""
    raw = await read_limited(request, MAX_DOCUMENT_BYTES)
    if raw is None:
        raise DocumentTooLarge(too_large("(body)").problems)
    return raw


def _json_of(raw: bytes) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(["(body): not UTF-8 text"]) from None
    return load_json_text(text, "(body)")


def _is_json(request: Request) -> bool:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return not kind or kind == "application/json" or kind.endswith("+json")


class DocumentRoute(APIRoute):
    """A route whose JSON body is read with the configuration's limits (see the module)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def bounded(request: Request) -> Response:
            if request.method in ("POST", "PUT", "PATCH"):
                raw = await read_body(request)
                request._body = raw  # Starlette's copy of the body, which FastAPI reads
                if raw.strip() and _is_json(request):
                    request._json = await run_in_threadpool(_json_of, raw)
            return await handle(request)

        return bounded
