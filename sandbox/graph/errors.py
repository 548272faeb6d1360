"""Errors in Microsoft Graph's JSON shape.

Graph answers every failure with ``{"error": {"code", "message", "innerError": {"date",
"request-id", "client-request-id"}}}`` (Graph "Microsoft Graph error responses and resource
types", concepts/errors.md; the 401 and 404 bodies seen in microsoftgraph/microsoft-graph-docs
issues #302, #2894 and microsoftgraph/console-java-connect-sample#1). The codes used here and
where each comes from are listed on the constructors below.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ACCESS_DENIED = "Access is denied. Check credentials and try again."
ITEM_NOT_FOUND = "The specified object was not found in the store."


@dataclass
class GraphError(Exception):
    status: int
    code: str
    message: str
    headers: dict[str, str] = field(default_factory=dict)
    inner: dict[str, Any] = field(default_factory=dict)

    def body(self, request_id: str, client_request_id: str, date: str) -> dict[str, Any]:
        inner: dict[str, Any] = {
            **self.inner,
            "date": date,
            "request-id": request_id,
            "client-request-id": client_request_id,
        }
        return {"error": {"code": self.code, "message": self.message, "innerError": inner}}


def invalid_token(message: str, authorization_uri: str) -> GraphError:
    # Graph's 401: code InvalidAuthenticationToken, a WWW-Authenticate Bearer challenge.
    challenge = (
        f'Bearer realm="", authorization_uri="{authorization_uri}", '
        'client_id="00000003-0000-0000-c000-000000000000"'
    )
    return GraphError(401, "InvalidAuthenticationToken", message, {"WWW-Authenticate": challenge})


def access_denied(message: str = ACCESS_DENIED) -> GraphError:
    return GraphError(403, "ErrorAccessDenied", message)


def invalid_user(user: str) -> GraphError:
    # "The requested user '<id>' is invalid." (microsoft-graph-explorer-v4#3293)
    return GraphError(404, "ErrorInvalidUser", f"The requested user '{user}' is invalid.")


def item_not_found() -> GraphError:
    return GraphError(404, "ErrorItemNotFound", ITEM_NOT_FOUND)


def id_malformed() -> GraphError:
    return GraphError(400, "ErrorInvalidIdMalformed", "Id is malformed.")


def bad_request(message: str, code: str = "BadRequest") -> GraphError:
    return GraphError(400, code, message)


def too_many_requests(retry_after: float) -> GraphError:
    # concepts/throttling.md, "Sample response" (newer versions of the page).
    return GraphError(
        429,
        "TooManyRequests",
        "Please retry again later.",
        {"Retry-After": _seconds(retry_after)},
        {"code": "429", "message": "Please retry after", "status": "429"},
    )


def mailbox_concurrency(retry_after: float) -> GraphError:
    # Outlook's answer to a fifth concurrent request per app and mailbox
    # (includes/throttling-outlook.md: four concurrent requests; the code and text as
    # Microsoft Q&A 734143 and client code quote them).
    return GraphError(
        429,
        "ApplicationThrottled",
        "Application is over its MailboxConcurrency limit.",
        {"Retry-After": _seconds(retry_after)},
    )


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.3f}"
