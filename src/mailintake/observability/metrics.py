"""Prometheus metrics: what was imported and failed, polls and their duration, token
requests and their outcomes — served at ``/metrics`` by ``mailintake serve``."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

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
MAILBOX_LAG = Gauge(
    "mailintake_mailbox_lag_seconds",
    "How long the mailbox's next poll is overdue (now - its due time; 0 when not overdue)",
    ["mailbox"],
    registry=REGISTRY,
)


def render() -> bytes:
    return generate_latest(REGISTRY)
