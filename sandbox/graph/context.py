"""What a request handler gets: the request, the mailbox, the caller, and the caller's
preferences."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from sandbox.graph.auth import Principal
from sandbox.graph.call import Call, json_response
from sandbox.graph.model import Mailbox

if TYPE_CHECKING:
    from sandbox.graph.server import GraphEmulator

# What Graph sends with JSON bodies.
JSON_TYPE = (
    "application/json;odata.metadata=minimal;odata.streaming=true;"
    "IEEE754Compatible=false;charset=utf-8"
)


@dataclass
class Context:
    call: Call
    emulator: GraphEmulator
    box: Mailbox
    principal: Principal
    immutable: bool  # Prefer: IdType="ImmutableId"
    text_body: bool  # Prefer: outlook.body-content-type="text"
    prefix: str  # the request's mailbox URL, e.g. http://127.0.0.1:PORT/v1.0/me
    context_prefix: str  # for @odata.context

    def json(self, body: dict[str, Any], status: int = 200) -> Response:
        return json_response(body, status, JSON_TYPE)
