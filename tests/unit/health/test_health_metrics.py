"""The health gauges are read from their source at each scrape; without a known end the
earliest-end gauge is absent, and a source that fails leaves the gauges out, not the scrape."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from mailintake.observability import metrics


@dataclass
class Numbers:
    health: dict[str, int] = field(default_factory=dict)
    expiry_seconds: list[tuple[str, str, float]] = field(default_factory=list)


@pytest.fixture
def watched() -> Iterator[list[Numbers]]:
    shown: list[Numbers] = []

    def source() -> Numbers:
        if not shown:
            raise RuntimeError("database is away")
        return shown[-1]

    metrics.watch_health(source)
    yield shown
    metrics.watch_health(None)


def samples() -> dict[str, float]:
    found = {}
    for line in metrics.render().decode().splitlines():
        ours = line.startswith("mailintake_mailboxes") or "expiry_seconds" in line
        if ours and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            found[name] = float(value)
    return found


def test_gauges_follow_the_source_at_each_scrape(watched: list[Numbers]) -> None:
    assert samples() == {}  # the source failed: no health gauges, the rest still served
    assert b"mailintake_polls_total" in metrics.render()
    watched.append(Numbers({"healthy": 2, "failing": 1}))
    assert samples() == {
        'mailintake_mailboxes{health="healthy"}': 2.0,
        'mailintake_mailboxes{health="failing"}': 1.0,
    }
    watched.append(
        Numbers(
            {"healthy": 3},
            [("a", "certificate", 86400.0), ("b", "client_secret", -60.0)],
        )
    )
    assert samples() == {
        'mailintake_mailboxes{health="healthy"}': 3.0,
        'mailintake_expiry_seconds{kind="certificate",mailbox="a"}': 86400.0,
        'mailintake_expiry_seconds{kind="client_secret",mailbox="b"}': -60.0,
        "mailintake_earliest_expiry_seconds": -60.0,
    }
