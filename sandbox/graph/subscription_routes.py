"""The HTTP face of ``/subscriptions`` (sandbox/graph/subscriptions.py has the rules and
their sources): create and list, get, renew (PATCH), delete, and the ``reauthorize`` action."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, request

from sandbox.graph.auth import Principal, authenticate
from sandbox.graph.errors import bad_request

if TYPE_CHECKING:
    from sandbox.graph.server import GraphEmulator


def register(app: Flask, emulator: GraphEmulator, answer: Callable[..., Response]) -> None:
    """The ``/subscriptions`` routes; ``answer`` turns a handler's result or GraphError into
    Graph's response (sandbox.graph.routes)."""
    book = emulator.subscriptions

    def caller() -> Principal:
        emulator.note_request(request.method, request.path)
        return authenticate(emulator.idp, request.headers.get("Authorization"))

    def body() -> dict[str, Any]:
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            raise bad_request("Empty Payload. JSON content expected.")
        return data

    def json_answer(data: dict[str, Any], status: int = 200) -> Response:
        return Response(json.dumps(data), status, content_type="application/json")

    @app.route("/v1.0/subscriptions", methods=["GET", "POST"])
    def subscriptions() -> Response:
        def work() -> Response:
            principal = caller()
            if request.method == "POST":
                immutable = "immutableid" in request.headers.get("Prefer", "").lower()
                return json_answer(book.create(principal, body(), immutable).json(), 201)
            return json_answer({"value": [s.json() for s in book.listed(principal)]})

        return answer(work)

    @app.route("/v1.0/subscriptions/<key>", methods=["GET", "PATCH", "DELETE"])
    def subscription(key: str) -> Response:
        def work() -> Response:
            principal = caller()
            if request.method == "PATCH":
                return json_answer(book.renew(principal, key, body()).json())
            if request.method == "DELETE":
                book.delete(principal, key)
                return Response(status=204)
            return json_answer(book.get(principal, key).json())

        return answer(work)

    @app.route("/v1.0/subscriptions/<key>/reauthorize", methods=["POST"])
    def reauthorize(key: str) -> Response:
        def work() -> Response:
            book.reauthorize(caller(), key)
            return Response(status=204)

        return answer(work)
