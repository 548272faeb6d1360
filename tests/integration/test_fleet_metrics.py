"""``mailintake serve``'s /metrics with the workers' heartbeats, read from the store when
scraped: a worker that beats appears, one that stopped in order leaves."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from mailintake.settings import Settings
from mailintake.store import workers
from mailintake.store.repo import Store
from mailintake.web.app import create_app

HEARTBEAT = "mailintake_worker_heartbeat_timestamp_seconds"


@pytest.fixture
def client(settings: Settings, store: Store) -> Iterator[TestClient]:
    served = settings.model_copy(update={"allowed_hosts": ("testserver",)})
    with TestClient(create_app(served, store=store)) as client:
        yield client


def heartbeats(client: TestClient) -> dict[str, float]:
    answer = client.get("/metrics")  # without signing in, as Prometheus scrapes
    assert answer.status_code == 200
    families = {f.name: f for f in text_string_to_metric_families(answer.text)}
    assert "mailintake_messages" in families  # the process's own metrics, still
    if HEARTBEAT not in families:
        return {}
    return {s.labels["worker"]: s.value for s in families[HEARTBEAT].samples}


def test_serve_scrapes_the_workers_heartbeats(client: TestClient, store: Store) -> None:
    assert heartbeats(client) == {}
    now = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    with store.begin() as repo:
        workers.beat(repo.conn, "host-a:41:aaaaaaaaaaaa", "host-a", now, now, 16, 2)
        workers.beat(repo.conn, "host-b:42:bbbbbbbbbbbb", "host-b", now, now, 16, 0)
    later = now + timedelta(seconds=3)
    with store.begin() as repo:
        workers.beat(repo.conn, "host-a:41:aaaaaaaaaaaa", "host-a", now, later, 16, 1)
    assert heartbeats(client) == {
        "host-a:41:aaaaaaaaaaaa": later.timestamp(),
        "host-b:42:bbbbbbbbbbbb": now.timestamp(),
    }
    with store.begin() as repo:
        workers.stopped(repo.conn, "host-b:42:bbbbbbbbbbbb")
    assert heartbeats(client) == {"host-a:41:aaaaaaaaaaaa": later.timestamp()}
