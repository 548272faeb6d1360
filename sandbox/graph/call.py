"""One request as the emulator's handlers see it, read whole before they run (they run in
worker threads, away from the server's event loop), and the answers they give."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send


@dataclass(frozen=True)
class Call:
    method: str
    path: str  # decoded, e.g. /v1.0/users/anna@contoso.com/messages
    params: Mapping[str, str]  # what the route's path names, e.g. {"key": "…"}
    args: Mapping[str, str]  # the query's options
    headers: Headers
    body: bytes
    root: str  # scheme and host the client used, e.g. http://127.0.0.1:PORT

    @classmethod
    async def read(cls, request: Request) -> Call:
        return cls(
            request.method,
            request.scope["path"],
            request.path_params,
            request.query_params,
            request.headers,
            await request.body(),
            str(request.base_url).rstrip("/"),
        )

    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON (by its Content-Type or its text)."""
        kind = self.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if kind != "application/json" and not (
            kind.startswith("application/") and kind.endswith("+json")
        ):
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            return None


def json_response(body: Any, status: int = 200, content_type: str = "application/json") -> Response:
    return Response(json.dumps(body), status, headers={"content-type": content_type})


class Dropped(Response):
    """No answer: the connection is closed with nothing written, as a front end that gave up
    closes it. ``abort`` closes the connection of an ASGI scope's ``client``."""

    def __init__(self, abort: Callable[[Any], bool]) -> None:
        super().__init__(status_code=500)
        self.abort = abort

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.abort(scope.get("client")):
            raise RuntimeError("the connection to drop was not found")
        while (await receive())["type"] != "http.disconnect":
            pass  # the server notices the connection is gone
