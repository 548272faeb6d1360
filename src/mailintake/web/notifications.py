"""The endpoints Microsoft Graph calls: ``/notifications/graph`` (change notifications) and
``/notifications/graph/lifecycle`` (lifecycle notifications). They are public (Graph does not
sign in; web/security.py lets them through) and guarded otherwise:

- the validation handshake (includes/change-notifications-delivery-notificationurl-
  validation.md): a POST with ``?validationToken=…`` is answered at once ``200 text/plain``
  with the (decoded) token, well within Graph's 10 seconds; nothing else is done with it;
- a notification body is read up to ``MAX_BODY`` bytes (413 beyond, refused as it arrives, as
  configuration documents are: web/api/documents.py) and must be a JSON object with ``value``;
- the answer is ``202 Accepted`` as soon as the body is read (Graph wants a 2xx within 3
  seconds, concepts/change-notifications-delivery-webhooks.md); checking each
  notification's clientState and acting on it (engine.graph_notices) runs after the answer;
- an address sending more than ``RATE`` requests in ``WINDOW`` seconds, or whose
  notifications were refused (wrong clientState) ``REFUSALS`` times in ``REFUSAL_WINDOW``,
  is answered 429 with ``Retry-After`` (counted in this process).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Query, Request
from fastapi.responses import PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from mailintake.engine.graph_notices import Notices
from mailintake.engine.graph_push import LIFECYCLE_PATH, NOTIFY_PATH
from mailintake.observability.logging import get_logger
from mailintake.web.api.documents import read_limited

log = get_logger(__name__)
PATHS = frozenset({NOTIFY_PATH, LIFECYCLE_PATH})
MAX_BODY = 256 * 1024
MAX_TOKEN = 1024  # characters of a validation token echoed
RATE, WINDOW = 600, 60.0
REFUSALS, REFUSAL_WINDOW = 20, 600.0


class Limits:
    """Requests and refusals per address, in sliding windows (see the module)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._requests: dict[str, deque[float]] = {}
        self._refusals: dict[str, deque[float]] = {}

    def admit(self, address: str) -> float:
        """0 when a request from ``address`` may be read now, else seconds to wait."""
        now = self.clock()
        with self._lock:
            refused = _recent(self._refusals, address, now - REFUSAL_WINDOW)
            if len(refused) >= REFUSALS:
                return refused[0] + REFUSAL_WINDOW - now
            asked = _recent(self._requests, address, now - WINDOW)
            if len(asked) >= RATE:
                return asked[0] + WINDOW - now
            asked.append(now)
            return 0.0

    def refused(self, address: str, count: int) -> None:
        now = self.clock()
        with self._lock:
            _recent(self._refusals, address, now - REFUSAL_WINDOW).extend([now] * count)


def _recent(book: dict[str, deque[float]], address: str, since: float) -> deque[float]:
    times = book.setdefault(address, deque())
    while times and times[0] < since:
        times.popleft()
    if len(book) > 10000:  # forget idle addresses: the book stays small
        for key in [k for k, v in book.items() if not v and k != address]:
            del book[key]
    return times


def _items(raw: bytes) -> list[Any] | None:
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    value = data.get("value") if isinstance(data, dict) else None
    return value if isinstance(value, list) else None


def _refusal(status: int, detail: str, wait: float | None = None) -> Response:
    headers = {"Retry-After": str(max(1, int(wait + 0.999)))} if wait is not None else None
    return Response(
        json.dumps({"error": detail}), status, media_type="application/json", headers=headers
    )


async def _receive(
    request: Request, background: BackgroundTasks, token: str | None, lifecycle: bool
) -> Response:
    if token is not None:
        if not token or len(token) > MAX_TOKEN:
            return _refusal(400, "validationToken: empty or too long")
        return PlainTextResponse(token)
    notices: Notices | None = request.app.state.notices
    limits: Limits = request.app.state.notification_limits
    address = (request.client.host if request.client else None) or ""
    wait = limits.admit(address)
    if wait > 0:
        log.warning("push.notifications_throttled", sender=address)
        return _refusal(429, "too many requests", wait)
    raw = await read_limited(request, MAX_BODY)
    if raw is None:
        return _refusal(413, f"a notification body is at most {MAX_BODY} bytes")
    items = _items(raw)
    if items is None:
        return _refusal(400, 'expected a JSON object with a "value" list')
    if notices is None:  # no public URL set: no subscriptions of ours
        log.warning("push.notifications_unexpected", sender=address)
        return Response(status_code=202)

    async def act() -> None:
        try:
            outcome = await run_in_threadpool(notices.receive, items, lifecycle, address)
        except Exception as exc:  # the database went away: the interval poll remains
            log.error("push.notifications_failed", sender=address, error=str(exc))
            return
        if outcome.refused:
            limits.refused(address, outcome.refused)

    background.add_task(act)
    return Response(status_code=202)


router = APIRouter(tags=["notifications"])
Token = Annotated[str | None, Query(alias="validationToken")]


@router.post(NOTIFY_PATH, summary="Microsoft Graph change notifications (public)")
async def change_notifications(
    request: Request, background: BackgroundTasks, validation_token: Token = None
) -> Response:
    return await _receive(request, background, validation_token, lifecycle=False)


@router.post(LIFECYCLE_PATH, summary="Microsoft Graph lifecycle notifications (public)")
async def lifecycle_notifications(
    request: Request, background: BackgroundTasks, validation_token: Token = None
) -> Response:
    return await _receive(request, background, validation_token, lifecycle=True)
