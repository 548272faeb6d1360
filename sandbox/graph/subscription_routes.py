"""The HTTP face of ``/subscriptions`` (sandbox/graph/subscriptions.py has the rules and
their sources): create and list, get, renew (PATCH), delete, and the ``reauthorize`` action."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.graph.auth import Principal, authenticate
from sandbox.graph.call import Call, json_response
from sandbox.graph.errors import bad_request

if TYPE_CHECKING:
    from sandbox.graph.server import GraphEmulator

Answer = Callable[[Callable[[Call], Response]], Callable[[Request], Awaitable[Response]]]


def routes(emulator: GraphEmulator, answer: Answer) -> list[Route]:
    """The ``/subscriptions`` routes; ``answer`` makes the endpoint that turns a handler's
    result or GraphError into Graph's response (sandbox.graph.routes)."""
    book = emulator.subscriptions

    def caller(call: Call) -> Principal:
        emulator.note_request(call.method, call.path)
        return authenticate(emulator.idp, call.headers.get("Authorization"))

    def body(call: Call) -> dict[str, Any]:
        data = call.json()
        if not isinstance(data, dict):
            raise bad_request("Empty Payload. JSON content expected.")
        return data

    def subscriptions(call: Call) -> Response:
        principal = caller(call)
        if call.method == "POST":
            immutable = "immutableid" in call.headers.get("Prefer", "").lower()
            return json_response(book.create(principal, body(call), immutable).json(), 201)
        return json_response({"value": [s.json() for s in book.listed(principal)]})

    def subscription(call: Call) -> Response:
        principal = caller(call)
        if call.method == "PATCH":
            return json_response(book.renew(principal, call.params["key"], body(call)).json())
        if call.method == "DELETE":
            book.delete(principal, call.params["key"])
            return Response(status_code=204)
        return json_response(book.get(principal, call.params["key"]).json())

    def reauthorize(call: Call) -> Response:
        book.reauthorize(caller(call), call.params["key"])
        return Response(status_code=204)

    return [
        Route("/v1.0/subscriptions", answer(subscriptions), methods=["GET", "POST"]),
        Route(
            "/v1.0/subscriptions/{key}", answer(subscription), methods=["GET", "PATCH", "DELETE"]
        ),
        Route("/v1.0/subscriptions/{key}/reauthorize", answer(reauthorize), methods=["POST"]),
    ]
