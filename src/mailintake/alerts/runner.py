"""Alerts beside the scheduler: an evaluation every minute (``AlertLoop``), whatever happens
to one; and the test alert of ``mailintake alerts test``."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime

from mailintake.alerts.alerter import (
    Alerter,
    ChannelFactory,
    ConditionsProvider,
    Outcome,
    build_channel,
)
from mailintake.alerts.message import AlertMessage
from mailintake.errors import AlertNotSent
from mailintake.health import active_conditions
from mailintake.observability.logging import get_logger
from mailintake.store import alert_settings
from mailintake.store.repo import Store

log = get_logger(__name__)
PERIOD = 60.0  # seconds between evaluations


def _utcnow() -> datetime:
    return datetime.now(UTC)


def alerter_for(
    store: Store,
    conditions: ConditionsProvider = active_conditions,
    channels: ChannelFactory = build_channel,
) -> Alerter:
    """The alerter on the health conditions (``mailintake.health.active_conditions``)."""
    return Alerter(store, conditions, channels)


@dataclass
class AlertLoop:
    """Every ``period`` seconds, one evaluation; a failure (the database went away) is
    logged and the next period tries again. Polling never waits for it."""

    alerter: Alerter
    period: float = PERIOD
    _stop: threading.Event = field(default_factory=threading.Event)

    def run_forever(self) -> None:
        while not self._stop.is_set():
            try:
                self.alerter.evaluate()
            except Exception as exc:
                log.error("alert.evaluation_failed", error=str(exc))
            self._stop.wait(self.period)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run_forever, name="alerts", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()


def send_test(
    store: Store, channels: ChannelFactory = build_channel, now: datetime | None = None
) -> list[Outcome]:
    """A test alert to each configured channel: per channel, sent or the reason why not."""
    now = now or _utcnow()
    with store.read() as repo:
        settings = alert_settings.read(repo.conn, repo.box, reveal=True)
    message = AlertMessage(
        event="test",
        key="test",
        mailbox=None,
        kind="test",
        state="test",
        summary="A test alert from mailintake: this channel works.",
        since=now,
        sent_at=now,
    )
    outcomes = []
    for spec in settings.channels if settings is not None else []:
        channel = channels(spec)
        error = None
        try:
            channel.send(message)
        except AlertNotSent as exc:
            error = str(exc)
        finally:
            close = getattr(channel, "close", None)
            if close is not None:
                close()
        outcomes.append(Outcome(spec.name, "test", "test", "test", error))
    return outcomes
