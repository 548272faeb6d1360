"""What a batch of Graph notifications does, once each is known to be Graph's.

Each notification names its subscription and carries the ``clientState`` given when the
subscription was created (concepts/change-notifications-delivery-webhooks.md, "Processing
the change notification": a mismatch means it may come from someone else). It is compared in
constant time with the one kept encrypted in the store; a notification that does not match
(or names no subscription of ours) is ignored and logged, never acted on.

- a change notification (``created``): the mailbox is due now, so a pass imports the message;
- ``reauthorizationRequired``: the subscription is renewed (which reauthorizes it) at once;
- ``subscriptionRemoved``: it is created again at once, and the mailbox polled;
- ``missed``: some notifications were not delivered: a whole pass of the mailbox now
  (concepts/change-notifications-lifecycle-events.md). A pass never relies on notifications
  for what it imports, so a pass is that resync.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from mailintake.observability import metrics
from mailintake.observability.logging import get_logger
from mailintake.store import graph_subscriptions as stored
from mailintake.store.repo import Store

log = get_logger(__name__)
MAX_ITEMS = 1000  # notifications read from one request; Graph batches far fewer
LIFECYCLE_EVENTS = frozenset({"reauthorizationRequired", "subscriptionRemoved", "missed"})


@dataclass
class Outcome:
    """What one request's notifications did."""

    woken: set[str] = field(default_factory=set)  # mailboxes made due now
    renewals: set[str] = field(default_factory=set)  # subscriptions to renew or create
    refused: int = 0  # not Graph's (clientState), or not ours


@dataclass
class Notices:
    """Acts on notifications: ``wake`` makes a mailbox due now, ``poke`` starts a round of
    the subscription keeper (engine.graph_push.GraphPush.poke)."""

    store: Store
    wake: Callable[[str], object]
    poke: Callable[[], None]

    def receive(self, items: Iterable[Any], lifecycle: bool, sender: str | None) -> Outcome:
        """Act on a request's notifications (``lifecycle``: sent to the lifecycle URL);
        ``sender`` is the address they came from, for the log."""
        outcome = Outcome()
        for index, item in enumerate(items):
            if index >= MAX_ITEMS:
                break
            self._one(item, lifecycle, sender, outcome)
        for name in sorted(outcome.woken):
            self.wake(name)
        if outcome.renewals:
            self.poke()
        return outcome

    def _one(self, item: Any, lifecycle: bool, sender: str | None, outcome: Outcome) -> None:
        mailbox = self._verified(item)
        event = item.get("lifecycleEvent") if isinstance(item, dict) else None
        kind = str(event) if lifecycle and event in LIFECYCLE_EVENTS else "created"
        metrics.GRAPH_NOTIFICATIONS.labels(kind, "refused" if mailbox is None else "accepted").inc()
        if mailbox is None:
            outcome.refused += 1
            subscription = item.get("subscriptionId") if isinstance(item, dict) else None
            log.warning(
                "push.notification_refused",
                sender=sender,
                subscription=str(subscription)[:128] if subscription is not None else None,
            )
            return
        if not lifecycle and event is None:
            outcome.woken.add(mailbox)
            return
        subscription_id = str(item["subscriptionId"])
        log.info("push.lifecycle", mailbox=mailbox, lifecycle_event=str(event)[:64])
        if event == "reauthorizationRequired":
            with self.store.begin() as repo:
                stored.renew_asked(repo.conn, subscription_id)
            outcome.renewals.add(mailbox)
        elif event == "subscriptionRemoved":
            with self.store.begin() as repo:
                stored.removed(repo.conn, subscription_id)
            outcome.renewals.add(mailbox)
            outcome.woken.add(mailbox)
        elif event == "missed":
            outcome.woken.add(mailbox)

    def _verified(self, item: Any) -> str | None:
        """The mailbox of a notification whose clientState is its subscription's."""
        if not isinstance(item, dict):
            return None
        subscription, given = item.get("subscriptionId"), item.get("clientState")
        if not isinstance(subscription, str) or not isinstance(given, str):
            return None
        if len(subscription) > 128 or len(given) > 128:
            return None
        with self.store.read() as repo:
            found = stored.verified(repo.conn, repo.box, subscription)
        if found is None:
            return None
        if not hmac.compare_digest(found.client_state.encode(), given.encode()):
            return None
        return found.mailbox


__all__ = ["LIFECYCLE_EVENTS", "MAX_ITEMS", "Notices", "Outcome"]
