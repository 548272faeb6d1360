"""A Graph mailbox folder's change-notification subscription: create, renew, delete.

- Create (api/subscription-post-subscriptions.md): ``POST /subscriptions`` with the resource
  ``users/{mailbox}/mailFolders('{folder id}')/messages``, ``changeType: created``, the
  ``notificationUrl`` and ``lifecycleNotificationUrl``, a secret ``clientState`` and an
  ``expirationDateTime``. Graph first validates both URLs against this service (a POST with
  ``?validationToken=``; concepts/change-notifications-delivery-webhooks.md): a URL it cannot
  reach fails the creation with 400.
- Renew (api/subscription-update.md): ``PATCH /subscriptions/{id}`` with a new expiry; it
  also reauthorizes the subscription (concepts/change-notifications-lifecycle-events.md).
  404: Graph no longer has it (``SubscriptionGone``): it is created again.
- Delete: ``DELETE /subscriptions/{id}`` (204; 404 means already gone).

``LIFETIME`` is 4,230 minutes: within the 10,080 minutes Outlook message subscriptions allow
today and the 4,230 of the earlier documentation (oauth-facts §3.9), so either is accepted.
Requests go through the mailbox's Graph source (its token, renewed on 401, its proxy, its
request slots and retries; refusals translated there)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from mailintake.errors import SourceError
from mailintake.sources.graph import GraphSource
from mailintake.sources.graph_answers import GraphRefused

LIFETIME = timedelta(minutes=4230)
VALIDATION_FAILED = "validation request failed"


class SubscriptionGone(SourceError):
    """Graph no longer has the subscription (expired, removed, or deleted)."""


@dataclass(frozen=True)
class Subscribed:
    id: str
    expires: datetime


def graph_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    head, dot, fraction = text.strip().rstrip("Z").partition(".")
    try:
        moment = datetime.fromisoformat(head + (dot + fraction[:6] if dot else ""))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class GraphSubscriptions:
    """The subscription calls for one mailbox, through its Graph source."""

    def __init__(self, source: GraphSource) -> None:
        self.source = source
        self.root = source.settings.graph_url.rstrip("/")
        self._opened = False

    def _open(self) -> None:
        if not self._opened:
            self.source.auth.open()  # the token, before the first request
            self._opened = True

    def _call(self, method: str, url: str, **kwargs: Any) -> Any:
        self._open()
        return self.source._request(method, url, **kwargs)

    def create(
        self, notification_url: str, lifecycle_url: str, client_state: str, now: datetime
    ) -> Subscribed:
        settings = self.source.settings
        self._open()
        folder = self.source.folder_id(settings.folder).replace("'", "''")
        body = {
            "changeType": "created",
            "notificationUrl": notification_url,
            "lifecycleNotificationUrl": lifecycle_url,
            "resource": f"users/{settings.mailbox}/mailFolders('{folder}')/messages",
            "expirationDateTime": graph_time(now + LIFETIME),
            "clientState": client_state,
        }
        try:
            answer = self._call("POST", f"{self.root}/subscriptions", json=body)
        except GraphRefused as exc:
            if exc.status == 400 and VALIDATION_FAILED in exc.detail.lower():
                raise SourceError(
                    f"{self.source.name}: Graph could not validate {notification_url} "
                    f"({exc.detail}): the public URL must reach this server's "
                    "/notifications/graph over HTTPS from the Internet and answer within 10 "
                    "seconds (MAILINTAKE_PUBLIC_URL, docs/providers/microsoft.md)"
                ) from exc
            raise
        return self._subscribed(answer.json(), now)

    def renew(self, subscription_id: str, now: datetime) -> datetime:
        body = {"expirationDateTime": graph_time(now + LIFETIME)}
        try:
            answer = self._call("PATCH", self._url(subscription_id), json=body)
        except GraphRefused as exc:
            if exc.status == 404:
                raise SubscriptionGone(f"{self.source.name}: {exc}") from exc
            raise
        return self._subscribed(answer.json(), now).expires

    def delete(self, subscription_id: str) -> None:
        try:
            self._call("DELETE", self._url(subscription_id))
        except GraphRefused as exc:
            if exc.status != 404:
                raise

    def close(self) -> None:
        self.source.close()

    def _url(self, subscription_id: str) -> str:
        return f"{self.root}/subscriptions/{quote(subscription_id, safe='')}"

    def _subscribed(self, body: Any, now: datetime) -> Subscribed:
        identifier = body.get("id") if isinstance(body, dict) else None
        if not isinstance(identifier, str) or not identifier:
            raise SourceError(f"{self.source.name}: Graph created a subscription without an id")
        expires = parse_time(body.get("expirationDateTime")) or now + LIFETIME
        return Subscribed(identifier, expires)


__all__ = ["LIFETIME", "GraphSubscriptions", "Subscribed", "SubscriptionGone"]
