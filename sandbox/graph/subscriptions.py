"""Change notifications through webhooks: ``/subscriptions`` and what Graph sends.

What is emulated, each from Microsoft's pages (microsoft-graph-docs-contrib):

- ``POST /subscriptions`` (api/subscription-post-subscriptions.md): resource
  ``users/{id}/mailFolders('{folder}')/messages`` (or ``me/…``, or ``…/messages`` for the
  whole mailbox), ``changeType`` among created/updated/deleted, ``expirationDateTime`` at most
  ``MAX_MINUTES`` ahead (includes/change-notifications-subscription-lifetime.md: 10,080
  minutes, "under 7 days", for Outlook messages), ``clientState`` of 128 characters at most,
  ``lifecycleNotificationUrl``. Before answering 201 Graph validates the URLs
  (includes/change-notifications-delivery-notificationurl-validation.md): it POSTs to the URL
  with ``?validationToken=…`` and needs, within 10 seconds, ``200 OK``, ``text/plain`` and the
  decoded token as the body; otherwise it answers 400 "Subscription validation request
  failed. Notification endpoint must respond with 200 OK to validation request." (the text
  quoted in Microsoft Q&A 416427). Both URLs are validated
  (concepts/change-notifications-lifecycle-events.md). Delegated tokens may not subscribe to
  another user's folders: ``.Shared`` permissions do not support subscriptions
  (concepts/outlook-share-messages-folders.md).
- ``GET``/``PATCH``/``DELETE /subscriptions/{id}`` (api/subscription-update.md: renewal with
  a new ``expirationDateTime``, which also reauthorizes; 204 on delete), and
  ``POST /subscriptions/{id}/reauthorize`` (lifecycle-events.md).
- A change notification per new message in a subscribed folder, POSTed to
  ``notificationUrl`` (concepts/change-notifications-delivery-webhooks.md, "Change
  notification example"): ``{"value": [{subscriptionId, clientState, changeType, resource,
  resourceData: {id, …}, subscriptionExpirationDateTime, tenantId}]}``, with a 3-second
  timeout; a delivery that fails is tried again a few times (Graph keeps trying for 4 hours).
- Expiry: a subscription whose ``expirationDateTime`` has passed is gone.
- Lifecycle notifications to ``lifecycleNotificationUrl`` on request (``lifecycle``):
  ``reauthorizationRequired`` (delivery pauses until the subscription is renewed or
  reauthorized), ``subscriptionRemoved`` (the subscription is deleted first) and ``missed``.
"""

from __future__ import annotations

import queue
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx2

from sandbox import http_clients
from sandbox.graph.auth import Principal, authorize
from sandbox.graph.errors import GraphError, access_denied, bad_request, invalid_user
from sandbox.graph.model import Mailbox, Message

if TYPE_CHECKING:
    from sandbox.graph.server import GraphEmulator

MAX_MINUTES = 10080  # Outlook message subscriptions, basic notifications
MAX_CLIENT_STATE = 128
CHANGE_TYPES = frozenset({"created", "updated", "deleted"})
LIFECYCLE_EVENTS = frozenset({"reauthorizationRequired", "subscriptionRemoved", "missed"})
VALIDATION_TIMEOUT = 10.0
DELIVERY_TIMEOUT = 3.0
VALIDATION_FAILED = (
    "Subscription validation request failed. Notification endpoint must respond with 200 OK "
    "to validation request."
)
_RESOURCE = re.compile(r"^/?(me|users/([^/]+))/(?:mailfolders/([^/]+)/)?messages$", re.IGNORECASE)
_KEYED_FOLDER = re.compile(r"^/?(me|users/([^/]+))/mailfolders\('((?:[^']|'')*)'\)/messages$", re.I)


@dataclass
class Subscription:
    id: str
    resource: str
    change_types: frozenset[str]
    notification_url: str
    lifecycle_url: str | None
    client_state: str | None
    expires: datetime
    client_id: str
    creator: str | None  # the signed-in user; None for an application
    mailbox: str  # lower-case address
    folder_id: str | None  # None: every folder
    immutable: bool  # created with Prefer: IdType="ImmutableId"
    paused: bool = False  # reauthorizationRequired sent, not answered yet

    def json(self) -> dict[str, Any]:
        return {
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#subscriptions/$entity",
            "id": self.id,
            "resource": self.resource,
            "applicationId": self.client_id,
            "changeType": ",".join(sorted(self.change_types)),
            "clientState": self.client_state,
            "notificationUrl": self.notification_url,
            "lifecycleNotificationUrl": self.lifecycle_url,
            "expirationDateTime": graph_time(self.expires),
            "creatorId": self.creator or self.client_id,
            "includeResourceData": False,
            "latestSupportedTlsVersion": "v1_2",
        }


@dataclass
class Delivery:
    """One POST Graph made to a subscriber: what, where, and how it ended."""

    kind: str  # "validation", "change" or "lifecycle"
    url: str
    subscription: str | None
    body: dict[str, Any] | None
    status: int | None = None
    error: str | None = None
    at: float = field(default_factory=time.monotonic)


def graph_time(moment: datetime) -> str:
    """Graph's form: seven fractional digits and Z (2016-11-20T18:23:45.9356913Z)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def parse_time(text: Any) -> datetime:
    if not isinstance(text, str):
        raise bad_request("expirationDateTime is required.", "InvalidRequest")
    cleaned = re.sub(r"(\.\d{6})\d+", r"\1", text.strip()).replace("Z", "+00:00")
    try:
        moment = datetime.fromisoformat(cleaned)
    except ValueError:
        raise bad_request(f"Invalid expirationDateTime '{text}'.", "InvalidRequest") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _loopback(url: str) -> bool:
    return (urlsplit(url).hostname or "") in ("127.0.0.1", "localhost", "::1")


class Subscriptions:
    """The emulator's subscriptions, and the thread that delivers notifications."""

    def __init__(self, emulator: GraphEmulator) -> None:
        self.emulator = emulator
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        self.items: dict[str, Subscription] = {}
        self.deliveries: list[Delivery] = []  # every POST made, in order
        self.attempts = 3  # tries of one change notification
        self.retry_pause = 0.5
        self._lock = threading.RLock()
        self._outbox: queue.Queue[Delivery] = queue.Queue()
        self._sender: threading.Thread | None = None

    # --- the API --------------------------------------------------------------------------

    def create(self, principal: Principal, body: dict[str, Any], immutable: bool) -> Subscription:
        box, folder_id = self._target(principal, str(body.get("resource") or ""))
        change = {c.strip() for c in str(body.get("changeType") or "").split(",") if c.strip()}
        if not change or not change <= CHANGE_TYPES:
            raise bad_request(f"Invalid changeType '{body.get('changeType')}'.", "InvalidRequest")
        url = str(body.get("notificationUrl") or "")
        lifecycle = body.get("lifecycleNotificationUrl")
        for target in filter(None, (url, lifecycle)):
            if not str(target).lower().startswith("https://") and not _loopback(str(target)):
                raise bad_request("The notificationUrl must be an https URL.", "InvalidRequest")
        state = body.get("clientState")
        if state is not None and (not isinstance(state, str) or len(state) > MAX_CLIENT_STATE):
            raise bad_request("clientState must be at most 128 characters.", "InvalidRequest")
        expires = self._expiry(body.get("expirationDateTime"))
        for target in filter(None, (url, lifecycle)):
            self._validate(str(target))
        subscription = Subscription(
            id=str(uuid.uuid4()),
            resource=str(body["resource"]),
            change_types=frozenset(change),
            notification_url=url,
            lifecycle_url=str(lifecycle) if lifecycle else None,
            client_state=state,
            expires=expires,
            client_id=principal.client_id,
            creator=principal.username,
            mailbox=box.address.lower(),
            folder_id=folder_id,
            immutable=immutable,
        )
        with self._lock:
            self.items[subscription.id] = subscription
        return subscription

    def get(self, principal: Principal, key: str) -> Subscription:
        with self._lock:
            found = self._live().get(key)
        if found is None or found.client_id != principal.client_id:
            raise GraphError(404, "ResourceNotFound", f"The object '{key}' doesn't exist.")
        return found

    def listed(self, principal: Principal) -> list[Subscription]:
        with self._lock:
            return [s for s in self._live().values() if s.client_id == principal.client_id]

    def renew(self, principal: Principal, key: str, body: dict[str, Any]) -> Subscription:
        found = self.get(principal, key)
        expires = self._expiry(body.get("expirationDateTime"))
        with self._lock:
            found.expires, found.paused = expires, False
        return found

    def reauthorize(self, principal: Principal, key: str) -> None:
        found = self.get(principal, key)
        with self._lock:
            found.paused = False

    def delete(self, principal: Principal, key: str) -> None:
        found = self.get(principal, key)
        with self._lock:
            self.items.pop(found.id, None)

    def _target(self, principal: Principal, resource: str) -> tuple[Mailbox, str | None]:
        path = resource.strip()
        match = _KEYED_FOLDER.match(path) or _RESOURCE.match(path)
        if match is None:
            raise bad_request(f"Invalid resource '{resource}'.", "InvalidRequest")
        who, user, folder = match.group(1), match.group(2), match.group(3)
        if who.lower() == "me":
            if principal.username is None:
                raise bad_request("/me request is only valid with delegated authentication flow.")
            user = principal.username
        box = self.emulator.store.mailbox(user or "")
        if box is None:
            raise invalid_user(user or "")
        if principal.username is not None and principal.username.lower() != box.address.lower():
            raise access_denied()  # .Shared permissions do not support subscriptions
        authorize(principal, box, write=False, body=False)
        if folder is None:
            return box, None
        with self.emulator.store.lock:
            found = box.folder(folder.replace("''", "'"))
        if found is None:
            raise GraphError(404, "ErrorItemNotFound", "The specified object was not found.")
        return box, found.id

    def _expiry(self, value: Any) -> datetime:
        expires = parse_time(value)
        now = self.clock()
        if expires <= now:
            raise bad_request("Subscription expiration must be in the future.", "InvalidRequest")
        if expires > now + timedelta(minutes=MAX_MINUTES):
            raise bad_request(
                f"Subscription expiration can only be {MAX_MINUTES} minutes in the future.",
                "InvalidRequest",
            )
        return expires

    def _validate(self, url: str) -> None:
        # Graph's tokens are sentences (URL-encoded on the wire), not bare identifiers.
        token = (
            "Validation: Testing client application reachability for subscription "
            f"Request-Id: {uuid.uuid4()}"
        )
        record = Delivery("validation", url, None, None)
        self._record(record)
        try:
            answer = http_clients.post(
                url,
                params={"validationToken": token},
                headers={"Content-Type": "text/plain; charset=utf-8"},
                timeout=VALIDATION_TIMEOUT,
            )
            record.status = answer.status_code
            kind = answer.headers.get("content-type", "").split(";")[0].strip().lower()
            if answer.status_code == 200 and kind == "text/plain" and answer.text == token:
                return
            record.error = "wrong answer"
        except httpx2.HTTPError as exc:
            record.error = f"{exc.__class__.__name__}: {exc}"
        raise bad_request(VALIDATION_FAILED, "InvalidRequest")

    def _live(self) -> dict[str, Subscription]:
        """The subscriptions that have not expired; the others are gone, as in Graph."""
        now = self.clock()
        for key in [k for k, s in self.items.items() if s.expires <= now]:
            del self.items[key]
        return self.items

    # --- what Graph sends -----------------------------------------------------------------

    def message_created(self, box: Mailbox, message: Message) -> None:
        """A message arrived: notify every live subscription on its folder (or mailbox)."""
        with self._lock:
            targets = [
                s
                for s in self._live().values()
                if s.mailbox == box.address.lower()
                and s.folder_id in (None, message.folder_id)
                and "created" in s.change_types
                and not s.paused
            ]
        for subscription in targets:
            key = message.immutable_id if subscription.immutable else message.regular_id
            path = f"Users/{box.object_id}/Messages/{key}"
            item = {
                "id": uuid.uuid4().hex[:13],
                "subscriptionId": subscription.id,
                "subscriptionExpirationDateTime": graph_time(subscription.expires),
                "changeType": "created",
                "resource": path,
                "tenantId": self.emulator.idp.tenant_id,
                "resourceData": {
                    "@odata.type": "#Microsoft.Graph.Message",
                    "@odata.id": path,
                    "@odata.etag": f'W/"{message.change_key}"',
                    "id": key,
                },
            }
            if subscription.client_state is not None:
                item["clientState"] = subscription.client_state
            body = {"value": [item]}
            self._send(Delivery("change", subscription.notification_url, subscription.id, body))

    def lifecycle(self, key: str, event: str) -> bool:
        """Send the lifecycle notification ``event`` for subscription ``key`` to its
        lifecycleNotificationUrl (False: it has none). ``subscriptionRemoved`` deletes the
        subscription; ``reauthorizationRequired`` pauses its notifications until it is
        renewed or reauthorized."""
        if event not in LIFECYCLE_EVENTS:
            raise ValueError(f"lifecycle event must be one of {sorted(LIFECYCLE_EVENTS)}")
        with self._lock:
            found = self.items[key]
            if event == "subscriptionRemoved":
                del self.items[key]
            elif event == "reauthorizationRequired":
                found.paused = True
        if found.lifecycle_url is None:
            return False
        item: dict[str, Any] = {
            "subscriptionId": found.id,
            "subscriptionExpirationDateTime": graph_time(found.expires),
            "tenantId": self.emulator.idp.tenant_id,
            "lifecycleEvent": event,
        }
        if found.client_state is not None:
            item["clientState"] = found.client_state
        self._send(Delivery("lifecycle", found.lifecycle_url, found.id, {"value": [item]}))
        return True

    def of_mailbox(self, address: str) -> list[Subscription]:
        with self._lock:
            return [s for s in self._live().values() if s.mailbox == address.lower()]

    def _record(self, delivery: Delivery) -> None:
        with self._lock:
            self.deliveries.append(delivery)

    def _send(self, delivery: Delivery) -> None:
        self._record(delivery)
        with self._lock:
            if self._sender is None or not self._sender.is_alive():
                self._sender = threading.Thread(
                    target=self._deliver_forever, name="graph-notifications", daemon=True
                )
                self._sender.start()
        self._outbox.put(delivery)

    def _deliver_forever(self) -> None:
        with http_clients.Client(timeout=DELIVERY_TIMEOUT) as client:
            while True:
                delivery = self._outbox.get()
                for attempt in range(self.attempts):
                    try:
                        answer = client.post(delivery.url, json=delivery.body)
                        delivery.status, delivery.error = answer.status_code, None
                        if answer.is_success:
                            break
                    except httpx2.HTTPError as exc:
                        delivery.error = f"{exc.__class__.__name__}: {exc}"
                    if attempt + 1 < self.attempts:
                        time.sleep(self.retry_pause * 2**attempt)
