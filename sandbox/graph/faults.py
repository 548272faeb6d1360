"""Faults the emulator can be told to produce: the ways the real Graph (Exchange Online behind
it) misbehaves that its reference pages hardly mention. Every switch is off by default and
cites where the behaviour is documented or reported.

Paging (``interleave``, ``page_cap``, ``drop_next_links``, ``timeout_without_select``) is
applied by ``odata.page`` and ``handlers.list_messages``; the rest by ``routes._serve`` and
the message handlers.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

from sandbox.graph.errors import GraphError, too_many_requests

# includes/throttling-outlook.md (oauth-facts §3.6): 10,000 API requests per 10 minutes per
# app ID and mailbox.
BUDGET = 10_000
BUDGET_WINDOW = 600.0


@dataclass
class MessageFault:
    operation: str  # "value" | "patch" | "move" | "delete"
    status: int
    code: str
    message: str
    times: int


@dataclass(frozen=True)
class LargeValues:
    """``$value`` of a message over ``above`` bytes waits ``after`` seconds, then drops the
    connection (``drop``) or answers 504 GatewayTimeout (``504``)."""

    above: int
    fault: str = "drop"  # "drop" | "504"
    after: float = 30.0


@dataclass
class Faults:
    """The switches. Set the attributes, or use the methods for the ones that count down."""

    # One item that is not a message (Graph: "objects in our back end that are not message
    # objects ... such as the folder object", microsoftgraph/microsoft-graph-docs#5029 and
    # microsoft-graph-docs-contrib#6921) after every ``interleave`` messages of a folder. It
    # counts for ``$skip`` but is never returned: a page comes back shorter than ``$top`` and
    # the nextLink's ``$skip`` jumps past the messages returned
    # (microsoft-graph-docs#7569: "$skip=0&$top=100" → nextLink "$skip=190").
    interleave: int = 0
    # A page holds at most this many items whatever ``$top`` asked ("Sometimes, even though I
    # have specified '$top=100', I don't get 100 objects", microsoft-graph-docs#7569).
    page_cap: int | None = None
    # The next this-many listings stop after their first page without ``@odata.nextLink``
    # although more mail follows (microsoft-graph-docs-contrib#7980 = microsoft-graph-docs#2153:
    # "@odata:nextLink is sometimes not present when paginating through Outlook mail even if
    # there is more mail").
    drop_next_links: int = 0
    # A message listing with a ``$top`` over this and no ``$select`` answers 504 Gateway
    # Timeout (api/user-list-messages.md: "use $select ... to avoid HTTP 504"; oauth-facts
    # §3.1).
    timeout_without_select: int | None = None
    # A listing with ``$expand`` answers 400: for trying a client's way without it (the
    # expansion of extended properties on lists is shown on single items only in
    # singlevaluelegacyextendedproperty-get.md).
    refuse_expand: bool = False
    # (requests, seconds) allowed per app and mailbox; more answer 429 with ``Retry-After``
    # until the oldest request leaves the window (includes/throttling-outlook.md: 10,000 per
    # 10 minutes, ``BUDGET``/``BUDGET_WINDOW``; concepts/throttling.md: requests keep counting
    # while throttled).
    budget: tuple[int, float] | None = None
    # A user with no rights on another mailbox gets, instead of 403 ErrorAccessDenied, 404
    # with this code: "ErrorItemNotFound" ("The specified object was not found in the store.",
    # O365/python-o365#170, microsoftgraph/msgraph-sdk-powershell#622) or
    # "MailboxNotEnabledForRESTAPI" ("REST API is not yet supported for this mailbox.",
    # O365/python-o365#438, OfficeDev/outlook-dev-docs#1031).
    no_rights_as: str | None = None
    # App id → the mailboxes an application access policy lets it open; any other answers
    # 403 ErrorAccessDenied "Access to OData is disabled." (concepts/auth-limit-mailbox-
    # access.md, "Handling API errors"; oauth-facts §3.7).
    app_policies: dict[str, set[str]] = field(default_factory=dict)
    # ``$value`` of large items never arrives: the connection drops ("Unable to read data
    # from the transport connection" for the MIME of a message with attachments over 25 MB,
    # microsoftgraph/msgraph-sdk-dotnet#1477 = microsoft-graph-docs#18439) or the gateway
    # answers 504 after about 30 seconds (the ``$value`` of a 45-50 MB attachment,
    # microsoft-graph-docs#21183 = microsoft-graph-docs-contrib#1220; over 35 MB,
    # msgraph-sdk-dotnet#1882). Every time, while smaller items and other requests are
    # answered.
    large_values: LargeValues | None = None
    # Sync states made before the last ``forget_sync_states`` are gone: a delta token of
    # theirs answers 410 with ``sync_state_code`` (sandbox.graph.delta).
    sync_generation: int = 0
    sync_state_code: str = "syncStateNotFound"
    _next: deque[tuple[int, float | None]] = field(default_factory=deque)
    _messages: dict[str, list[MessageFault]] = field(default_factory=dict)
    _seen: dict[tuple[str, str], deque[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_next(self, n: int, status: int, retry_after: float | None = None) -> None:
        """The next ``n`` requests answer ``status``: 503 ServiceUnavailable (with
        ``Retry-After`` when given) or 504 GatewayTimeout, as Graph's front ends do under load
        (concepts/errors.md lists both; concepts/throttling.md: 503 may carry Retry-After)."""
        with self._lock:
            self._next.extend([(status, retry_after)] * n)

    def fail_message(
        self, message_id: str, operation: str, status: int, code: str, times: int = 1
    ) -> None:
        """``operation`` on one message fails ``times`` times.

        - ``value``: 500 ErrorMimeContentConversionFailed — Exchange could not produce the
          item's MIME ("For a GetItem operation, this response indicates that the MIME content
          could not be generated", EWS ResponseCode reference, office-developer-exchange-docs
          responsecode.md; met on corrupt items by demisto/content's EWSv2, XSUP-28730) —,
          404 ErrorItemNotFound (the item went away after the listing), 504 GatewayTimeout;
        - ``patch``/``move``/``delete``: 404 ErrorItemNotFound although the message is still
          there. A 404 says nothing certain: it came for messages that still existed under
          another id (kellylford/QuickMail#366: "deleted/moved mail reappears") and for a move
          that had been done (microsoftgraph/msgraph-sdk-php#285, msgraph-sdk-java#541).
        """
        messages = {
            "ErrorMimeContentConversionFailed": "MIME content conversion failed.",
            "ErrorItemNotFound": "The specified object was not found in the store.",
            "GatewayTimeout": "The gateway did not receive a response in time.",
        }
        fault = MessageFault(operation, status, code, messages.get(code, code), times)
        with self._lock:
            self._messages.setdefault(message_id, []).append(fault)

    def forget_sync_states(self, code: str = "syncStateNotFound") -> None:
        """Every delta and skip token given so far stops working: the next request with one
        answers 410 Gone with ``code`` — ``syncStateNotFound`` ("The sync state generation
        is not found. The delta token is expired and data must be synchronized again.") or
        ``resyncRequired`` ("The delta token is no longer valid, and the app must reset the
        sync state."), concepts/errors.md, "Code property". Exchange drops the oldest tokens
        of its delta token cache (delta-query-overview.md, "Token duration") and may ask for
        a full synchronization after maintenance or a migration ("Synchronization
        reset")."""
        with self._lock:
            self.sync_generation += 1
            self.sync_state_code = code

    def reset(self) -> None:
        with self._lock:
            self.interleave = 0
            self.page_cap = None
            self.drop_next_links = 0
            self.timeout_without_select = None
            self.refuse_expand = False
            self.budget = None
            self.no_rights_as = None
            self.app_policies = {}
            self.large_values = None
            self._next.clear()
            self._messages.clear()
            self._seen.clear()

    # --- used by the server ---------------------------------------------------------------

    def take_next(self) -> GraphError | None:
        with self._lock:
            if not self._next:
                return None
            status, retry_after = self._next.popleft()
        headers = {"Retry-After": str(int(retry_after))} if retry_after is not None else {}
        if status == 503:
            return GraphError(
                503, "ServiceUnavailable", "The service is temporarily unavailable.", headers
            )
        return GraphError(
            status, "GatewayTimeout", "The gateway did not receive a response in time.", headers
        )

    def spend(self, client_id: str, mailbox: str) -> GraphError | None:
        """Counts one request against the budget; the 429 when it is spent."""
        if self.budget is None:
            return None
        limit, window = self.budget
        now = time.monotonic()
        with self._lock:
            seen = self._seen.setdefault((client_id, mailbox.lower()), deque())
            while seen and seen[0] <= now - window:
                seen.popleft()
            seen.append(now)  # a refused request counts too
            if len(seen) <= limit:
                return None
            wait = max(1, int(seen[-limit - 1] + window - now + 0.999))
        return too_many_requests(wait)

    def message_fault(self, message_id: str, operation: str) -> GraphError | None:
        with self._lock:
            for fault in self._messages.get(message_id, []):
                if fault.operation == operation and fault.times > 0:
                    fault.times -= 1
                    return GraphError(fault.status, fault.code, fault.message)
        return None

    def take_drop(self) -> bool:
        with self._lock:
            if self.drop_next_links <= 0:
                return False
            self.drop_next_links -= 1
            return True

    def allowed(self, client_id: str, mailbox: str) -> bool:
        with self._lock:
            allowed = self.app_policies.get(client_id)
        return allowed is None or mailbox.lower() in allowed


def odata_disabled() -> GraphError:
    return GraphError(403, "ErrorAccessDenied", "Access to OData is disabled.")


def folder_not_found() -> GraphError:
    # "ErrorFolderNotFound: The specified folder could not be found in the store." — a
    # delegate without rights on the folder (microsoft-graph-docs-contrib#4029).
    return GraphError(
        404, "ErrorFolderNotFound", "The specified folder could not be found in the store."
    )


def no_rights(code: str) -> GraphError:
    if code == "MailboxNotEnabledForRESTAPI":
        return GraphError(404, code, "REST API is not yet supported for this mailbox.")
    return GraphError(404, code, "The specified object was not found in the store.")
