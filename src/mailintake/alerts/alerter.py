"""The alerter: compares the conditions that hold now with what each channel was sent.

Per condition and channel: one ``alert`` when the condition begins or changes state, one
``reminder`` when it still holds after the reminder interval (at least a day) since the last
send, one ``recovered`` when it clears. Every send is claimed in the database first
(store/alerts.py), so several workers evaluating at once send it once. A channel that fails
is logged and tried again at the next evaluation; an evaluation never raises for it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from mailintake.alerts.conditions import Condition
from mailintake.alerts.email import EmailChannel
from mailintake.alerts.message import AlertMessage, Channel, Event
from mailintake.alerts.webhook import WebhookChannel
from mailintake.config.models import AlertsSpec, ChannelSpec
from mailintake.errors import AlertNotSent
from mailintake.observability.logging import get_logger
from mailintake.store import alert_settings
from mailintake.store import alerts as sent
from mailintake.store.leases import new_owner
from mailintake.store.repo import Store

log = get_logger(__name__)

# How long a claimed send may take before another worker may make it instead.
CLAIM = timedelta(minutes=5)
DEFAULT_TIMEOUT = 10.0  # seconds: a webhook's request, an SMTP session

ConditionsProvider = Callable[[Store, datetime], Sequence[Condition]]
ChannelFactory = Callable[[ChannelSpec], Channel]


@dataclass(frozen=True)
class Outcome:
    """One send made (or tried) by an evaluation."""

    channel: str
    event: Event
    key: str
    state: str
    error: str | None = None  # why it was not sent

    @property
    def ok(self) -> bool:
        return self.error is None


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Alerter:
    def __init__(
        self,
        store: Store,
        conditions: ConditionsProvider,
        channel_factory: ChannelFactory,
        *,
        clock: Callable[[], datetime] = _utcnow,
        owner: str | None = None,
    ) -> None:
        self.store = store
        self.conditions = conditions
        self.channel_factory = channel_factory
        self.clock = clock
        self.owner = owner or new_owner()

    def settings(self) -> AlertsSpec | None:
        with self.store.read() as repo:
            return alert_settings.read(repo.conn, repo.box, reveal=True)

    def evaluate(self) -> list[Outcome]:
        """Send what the conditions that hold now call for; the sends made (or tried)."""
        now = self.clock()
        settings = self.settings() or AlertsSpec()
        channels = {spec.name: spec for spec in settings.channels}
        holding = list(self.conditions(self.store, now))
        wanted = {c.key: c for c in holding if settings.alerts_on(c.kind, c.state)}
        with self.store.read() as repo:
            records = {(r.key, r.channel): r for r in sent.records(repo.conn)}
        outcomes: list[Outcome] = []
        built: dict[str, Channel] = {}

        def channel(name: str) -> Channel:
            if name not in built:
                built[name] = self.channel_factory(channels[name])
            return built[name]

        reminder = timedelta(seconds=settings.reminder_seconds)
        held = {c.key for c in holding}
        try:
            for condition in wanted.values():
                for name in channels:
                    record = records.get((condition.key, name))
                    event = _due(condition, record, now, reminder)
                    if event is None or not self._claim(condition, name, record, now):
                        continue
                    outcomes.append(self._send(channel(name), event, condition, now))
            for (key, name), record in records.items():
                if key in wanted and name in channels:
                    continue
                if record.state is None or name not in channels or key in held:
                    with self.store.begin() as repo:  # nothing owed: never sent, or not wanted
                        sent.forget(repo.conn, key, name, record.version, now)
                    continue
                if self._claim(None, name, record, now):
                    outcomes.append(self._recover(channel(name), record, now))
        finally:
            for built_channel in built.values():
                close = getattr(built_channel, "close", None)
                if close is not None:
                    close()
        return outcomes

    def _claim(
        self,
        condition: Condition | None,
        channel: str,
        record: sent.SentRecord | None,
        now: datetime,
    ) -> bool:
        with self.store.begin() as repo:
            if record is None:
                assert condition is not None
                return sent.claim_new(
                    repo.conn, _subject(condition), channel, self.owner, now, now + CLAIM
                )
            return sent.claim(
                repo.conn, record.key, channel, record.version, self.owner, now, now + CLAIM
            )

    def _send(self, channel: Channel, event: Event, condition: Condition, now: datetime) -> Outcome:
        message = AlertMessage(
            event=event,
            key=condition.key,
            mailbox=condition.mailbox,
            kind=condition.kind,
            state=condition.state,
            summary=condition.summary,
            since=condition.since,
            ends_at=condition.ends_at,
            sent_at=now,
        )
        error = self._deliver(channel, message)
        with self.store.begin() as repo:
            if error is None:
                subject = _subject(condition)
                sent.delivered(repo.conn, subject, channel.name, condition.state, self.owner, now)
            else:
                sent.failed(repo.conn, condition.key, channel.name, self.owner, error, now)
        return Outcome(channel.name, event, condition.key, condition.state, error)

    def _recover(self, channel: Channel, record: sent.SentRecord, now: datetime) -> Outcome:
        state = record.state or ""
        message = AlertMessage(
            event="recovered",
            key=record.key,
            mailbox=record.mailbox,
            kind=record.kind,
            state=state,
            summary=record.summary or "",
            since=record.since or now,
            ends_at=record.ends_at,
            sent_at=now,
        )
        error = self._deliver(channel, message)
        with self.store.begin() as repo:
            if error is None:
                sent.cleared(repo.conn, record.key, channel.name, self.owner)
            else:
                sent.failed(repo.conn, record.key, channel.name, self.owner, error, now)
        return Outcome(channel.name, "recovered", record.key, state, error)

    def _deliver(self, channel: Channel, message: AlertMessage) -> str | None:
        try:
            channel.send(message)
        except AlertNotSent as exc:
            log.warning(
                "alert.not_sent",
                channel=channel.name,
                alert_event=message.event,
                key=message.key,
                reason=str(exc),
            )
            return str(exc)
        log.info("alert.sent", channel=channel.name, alert_event=message.event, key=message.key)
        return None


def _due(
    condition: Condition, record: sent.SentRecord | None, now: datetime, reminder: timedelta
) -> Event | None:
    """What ``condition`` calls for on a channel that was last sent ``record``."""
    if record is not None and record.claimed_until is not None and record.claimed_until > now:
        return None  # being sent now, by another worker
    if record is None or record.state != condition.state:
        return "alert"
    if record.last_sent_at is None or now - record.last_sent_at >= reminder:
        return "reminder"
    return None


def _subject(condition: Condition) -> sent.Subject:
    return sent.Subject(
        key=condition.key,
        mailbox=condition.mailbox,
        kind=condition.kind,
        summary=condition.summary,
        since=condition.since,
        ends_at=condition.ends_at,
    )


def build_channel(spec: ChannelSpec) -> Channel:
    """The channel a validated ``spec`` describes (secrets revealed)."""
    timeout = spec.timeout or DEFAULT_TIMEOUT
    if spec.type == "webhook":
        headers = {k: v.get_secret_value() for k, v in (spec.headers or {}).items()}
        return WebhookChannel(spec.name, spec.url or "", headers, timeout=timeout)
    return EmailChannel(
        spec.name,
        host=spec.host or "",
        port=spec.port,
        security=spec.security or "starttls",
        sender=spec.sender or "",
        to=spec.to or [],
        username=spec.username,
        password=spec.password.get_secret_value() if spec.password else None,
        timeout=timeout,
        ca_file=spec.ca_file,
    )
