"""The HTTP surface: Graph v1.0 mail paths under ``/v1.0``, for ``/me`` and ``/users/{id}``.

Paths are matched the way Graph matches them: segment names case-insensitively, the
``mailFolders('inbox')`` key syntax as well as ``mailFolders/inbox``, and ids exactly.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import quote

import anyio.to_thread
from anyio import CapacityLimiter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.graph import delta, handlers, subscription_routes
from sandbox.graph.auth import authenticate, authorize, me_without_user
from sandbox.graph.call import Call, json_response
from sandbox.graph.context import Context
from sandbox.graph.errors import GraphError, bad_request, invalid_user, too_many_requests

if TYPE_CHECKING:
    from sandbox.graph.server import GraphEmulator

METHODS = ["GET", "POST", "PATCH", "DELETE", "PUT"]
# Requests served at once (each in a worker thread): more than any test or benchmark sends,
# so that latency (a sleep per request) is added to each, not queued behind the others.
WORKERS = 200
_KEYED = re.compile(r"^([A-Za-z.$]+)\('(.*)'\)$")


Handler = Callable[[Context, list[str]], Response]
# The work of one request, run in a worker thread: its answer, or the GraphError it raised.
Work = Callable[[Call], Response]
Endpoint = Callable[[Request], Awaitable[Response]]
# (method, pattern) -> (handler, write, needs body access). "*" is one id or name.
ROUTES: list[tuple[str, tuple[str, ...], Handler, bool, bool]] = [
    ("GET", ("mailfolders",), handlers.list_folders, False, False),
    ("POST", ("mailfolders",), handlers.create_folder, True, False),
    ("GET", ("mailfolders", "*"), handlers.get_folder, False, False),
    ("GET", ("mailfolders", "*", "childfolders"), handlers.list_folders, False, False),
    ("POST", ("mailfolders", "*", "childfolders"), handlers.create_folder, True, False),
    ("GET", ("mailfolders", "*", "messages"), handlers.list_messages, False, False),
    # Before the message by id: "delta" is the function, not an id (sandbox.graph.delta).
    ("GET", ("mailfolders", "*", "messages", "delta"), delta.messages_delta, False, False),
    ("GET", ("mailfolders", "*", "messages", "*"), handlers.get_message, False, False),
    ("PATCH", ("mailfolders", "*", "messages", "*"), handlers.patch_message, True, False),
    ("DELETE", ("mailfolders", "*", "messages", "*"), handlers.delete_message, True, False),
    ("GET", ("mailfolders", "*", "messages", "*", "$value"), handlers.raw_message, False, True),
    ("POST", ("mailfolders", "*", "messages", "*", "move"), handlers.move_message, True, False),
    (
        "POST",
        ("mailfolders", "*", "messages", "*", "permanentdelete"),
        handlers.permanent_delete,
        True,
        False,
    ),
    ("GET", ("messages",), handlers.list_messages, False, False),
    ("GET", ("messages", "*"), handlers.get_message, False, False),
    ("PATCH", ("messages", "*"), handlers.patch_message, True, False),
    ("DELETE", ("messages", "*"), handlers.delete_message, True, False),
    ("GET", ("messages", "*", "$value"), handlers.raw_message, False, True),
    ("POST", ("messages", "*", "move"), handlers.move_message, True, False),
    ("POST", ("messages", "*", "permanentdelete"), handlers.permanent_delete, True, False),
]


def segments_of(path: str) -> list[str]:
    out: list[str] = []
    for part in path.strip("/").split("/"):
        keyed = _KEYED.match(part)
        if keyed:
            out.extend([keyed.group(1), keyed.group(2).replace("''", "'")])
        elif part:
            out.append(part)
    return out


def _keyword(segment: str) -> str:
    lowered = segment.lower()
    return lowered.removeprefix("microsoft.graph.")


def match(method: str, tail: list[str]) -> tuple[Handler, list[str], bool, bool]:
    path_known = False
    for route_method, pattern, handler, write, body in ROUTES:
        if len(pattern) != len(tail):
            continue
        keys: list[str] = []
        for want, got in zip(pattern, tail, strict=True):
            if want == "*":
                keys.append(got)
            elif _keyword(got) != want:
                break
        else:
            if route_method == method:
                return handler, keys, write, body
            path_known = True
    if path_known:
        raise GraphError(
            405, "Request_BadRequest", f"The HTTP method '{method}' is not allowed here."
        )
    unknown = next((s for s in tail if not s.startswith("AA")), tail[-1] if tail else "")
    raise bad_request(f"Resource not found for the segment '{unknown}'.")


def preferences(call: Call) -> dict[str, str]:
    """``Prefer`` may repeat and may list several preferences separated by commas."""
    found: dict[str, str] = {}
    for header in call.headers.getlist("Prefer"):
        for item in header.split(","):
            name, _, value = item.strip().partition("=")
            found[name.strip().lower()] = value.strip().strip('"')
    return found


def build_app(emulator: GraphEmulator) -> Starlette:
    """The ASGI app: each request is read whole, then served in a worker thread (the
    emulator's state is guarded by locks, and latency is a sleep)."""
    workers = CapacityLimiter(WORKERS)

    def answer(work: Work) -> Endpoint:
        """The endpoint giving ``work``'s response, or the GraphError it raised in Graph's
        shape; with request ids."""

        def respond(call: Call) -> Response:
            request_id = str(uuid.uuid4())
            client_request_id = call.headers.get("client-request-id", request_id)
            try:
                response = work(call)
            except GraphError as error:
                date = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
                body = error.body(request_id, client_request_id, date)
                response = json_response(body, error.status)
                response.headers.update(error.headers)
                if error.status == 429:
                    emulator.note_throttled()
            response.headers["request-id"] = request_id
            response.headers["client-request-id"] = client_request_id
            return response

        async def endpoint(request: Request) -> Response:
            call = await Call.read(request)
            return await anyio.to_thread.run_sync(respond, call, limiter=workers)

        return endpoint

    def graph(call: Call) -> Response:
        return _serve(emulator, call, call.params["rest"])

    routes = [
        *subscription_routes.routes(emulator, answer),
        Route("/v1.0/{rest:path}", answer(graph), methods=METHODS),
    ]
    return Starlette(routes=routes)


def _serve(emulator: GraphEmulator, call: Call, rest: str) -> Response:
    emulator.note_request(call.method, call.path)
    retry_after = emulator.take_throttle()
    if retry_after is not None:
        emulator.wait()
        raise too_many_requests(retry_after)
    principal = authenticate(emulator.idp, call.headers.get("Authorization"), emulator.resource)
    parts = segments_of(rest)
    if parts and parts[0].lower() == "me":
        if principal.username is None:
            raise me_without_user()
        user, tail = principal.username, parts[1:]
        path_prefix = "me"
    elif len(parts) >= 2 and parts[0].lower() == "users":
        user, tail = parts[1], parts[2:]
        path_prefix = f"users/{quote(user, safe='@')}"
    else:
        raise bad_request(f"Resource not found for the segment '{parts[0] if parts else ''}'.")
    box = emulator.store.mailbox(user)
    if box is None:
        raise invalid_user(user)
    handler, keys, write, body = match(call.method, tail)
    faults = emulator.faults
    spent = faults.spend(principal.client_id, box.address)
    if spent is not None:
        raise spent
    failure = faults.take_next()
    if failure is not None:
        emulator.wait()
        raise failure
    authorize(principal, box, write=write, body=body, faults=faults)
    release = emulator.admit(principal.client_id, box.address)
    try:
        emulator.wait()
        prefs = preferences(call)
        root = call.root
        context = Context(
            call,
            emulator,
            box,
            principal,
            prefs.get("idtype", "").lower() == "immutableid",
            prefs.get("outlook.body-content-type", "").lower() == "text",
            f"{root}/v1.0/{path_prefix}",
            f"{root}/v1.0/$metadata#users('{quote(box.address)}')",
        )
        response = handler(context, keys)
        applied = []
        if context.immutable:
            applied.append('IdType="ImmutableId"')
        if context.text_body:
            applied.append('outlook.body-content-type="text"')
        if applied:
            response.headers["Preference-Applied"] = ", ".join(applied)
    finally:
        # The request stops counting against the mailbox's four when the server has
        # finished with it, before its answer travels back; a client that sends its next
        # request on receipt never sees its own previous one still counted.
        release()
    return response
