"""Prometheus metrics: what was imported and failed, polls and their duration, token
requests and their outcomes — served at ``/metrics`` by ``mailintake serve``."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from mailintake.observability.logging import get_logger

REGISTRY = CollectorRegistry(auto_describe=True)

MESSAGES = Counter(
    "mailintake_messages_total",
    "Messages handled, by mailbox and outcome",
    ["mailbox", "outcome"],
    registry=REGISTRY,
)
POLLS = Counter(
    "mailintake_polls_total",
    "Import passes, by mailbox and outcome",
    ["mailbox", "outcome"],
    registry=REGISTRY,
)
POLL_SECONDS = Histogram(
    "mailintake_poll_seconds",
    "Duration of one import pass",
    ["mailbox"],
    registry=REGISTRY,
    buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900),
)
TOKENS = Counter(
    "mailintake_token_requests_total",
    "Token requests, by mailbox, grant and outcome",
    ["mailbox", "grant", "outcome"],
    registry=REGISTRY,
)

POLLS_RUNNING = Gauge(
    "mailintake_polls_running",
    "Polls running now in this process",
    registry=REGISTRY,
)
POLL_CONCURRENCY = Gauge(
    "mailintake_poll_concurrency",
    "This process's limit on polls running at once",
    registry=REGISTRY,
)
IDLE_CONNECTIONS = Gauge(
    "mailintake_idle_connections",
    "IMAP IDLE (push) connections open now in this process",
    registry=REGISTRY,
)
IDLE_BUDGET = Gauge(
    "mailintake_idle_connection_budget",
    "This process's limit on IMAP IDLE (push) connections (--idle-connections)",
    registry=REGISTRY,
)
MAILBOX_LAG = Gauge(
    "mailintake_mailbox_lag_seconds",
    "How long the mailbox's next poll is overdue (now - its due time; 0 when not overdue)",
    ["mailbox"],
    registry=REGISTRY,
)

GRAPH_NOTIFICATIONS = Counter(
    "mailintake_graph_notifications_total",
    "Microsoft Graph notifications received, by kind (created or the lifecycle event) and "
    "outcome (accepted, or refused: not Graph's clientState or not a subscription of ours)",
    ["kind", "outcome"],
    registry=REGISTRY,
)


class HealthNumbers(Protocol):
    @property
    def health(self) -> Mapping[str, int]: ...

    @property
    def expiry_seconds(self) -> Sequence[tuple[str, str, float]]: ...


class _HealthCollector(Collector):
    def __init__(self) -> None:
        self.source: Callable[[], HealthNumbers] | None = None

    def describe(self) -> Iterator[Metric]:
        return iter(())  # read at scrape time only: registering reads no store

    def collect(self) -> Iterator[Metric]:
        if self.source is None:
            return
        try:
            numbers = self.source()
        except Exception as exc:  # a scrape never fails for the store: the gauges are absent
            get_logger(__name__).warning("metrics.health_unavailable", error=str(exc))
            return
        mailboxes = GaugeMetricFamily(
            "mailintake_mailboxes", "Mailboxes per health state", labels=["health"]
        )
        for health, count in numbers.health.items():
            mailboxes.add_metric([health], count)
        yield mailboxes
        ends = GaugeMetricFamily(
            "mailintake_expiry_seconds",
            "Seconds until a known end (refresh token, client secret, certificate)",
            labels=["mailbox", "kind"],
        )
        for mailbox, kind, seconds in numbers.expiry_seconds:
            ends.add_metric([mailbox, kind], seconds)
        yield ends
        if numbers.expiry_seconds:
            yield GaugeMetricFamily(
                "mailintake_earliest_expiry_seconds",
                "Seconds until the earliest known end",
                value=min(seconds for _, _, seconds in numbers.expiry_seconds),
            )


HEALTH = _HealthCollector()
REGISTRY.register(HEALTH)


def watch_health(source: Callable[[], HealthNumbers] | None) -> None:
    """Expose the health gauges from ``source`` (None: stop exposing them)."""
    HEALTH.source = source


def render() -> bytes:
    return generate_latest(REGISTRY)
