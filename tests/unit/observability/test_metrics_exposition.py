"""The worker's /metrics server and the scrape view: the registry's families, the heartbeats
read when scraped, and a scrape that still answers when the store does not."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import pytest
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.parser import text_string_to_metric_families

from mailintake.observability.exposition import HeartbeatCollector, MetricsServer, Scrape
from sandbox import http_clients

HEARTBEAT = "mailintake_worker_heartbeat_timestamp_seconds"


def families(body: bytes) -> dict[str, list[tuple[dict[str, str], float]]]:
    return {
        f.name: [(s.labels, s.value) for s in f.samples]
        for f in text_string_to_metric_families(body.decode())
    }


@pytest.fixture
def registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    Counter("mailintake_polls", "passes", ["mailbox"], registry=registry).labels("a").inc(2)
    return registry


def test_heartbeats_are_read_at_each_scrape(registry: CollectorRegistry) -> None:
    beats = {"host-b:17": 1_796_000_010.0, "host-a:12": 1_796_000_000.5}
    scrape = Scrape(registry, HeartbeatCollector(lambda: beats))
    found = families(scrape.render())
    assert found[HEARTBEAT] == [
        ({"worker": "host-a:12"}, 1_796_000_000.5),
        ({"worker": "host-b:17"}, 1_796_000_010.0),
    ]
    assert found["mailintake_polls"] == [({"mailbox": "a"}, 2.0)]
    del beats["host-b:17"]  # a worker that stopped leaves the scrape
    assert families(scrape.render())[HEARTBEAT] == [({"worker": "host-a:12"}, 1_796_000_000.5)]


def test_a_store_that_fails_leaves_only_the_heartbeats_out(registry: CollectorRegistry) -> None:
    def unreachable() -> Mapping[str, float]:
        raise ConnectionError("database away")

    found = families(Scrape(registry, HeartbeatCollector(unreachable)).render())
    assert HEARTBEAT not in found
    assert found["mailintake_polls"] == [({"mailbox": "a"}, 2.0)]


@pytest.fixture
def server(registry: CollectorRegistry) -> Iterator[MetricsServer]:
    served = MetricsServer("127.0.0.1", 0, Scrape(registry)).start()
    yield served
    served.close()


def test_the_server_answers_metrics_and_nothing_else(server: MetricsServer) -> None:
    base = f"http://127.0.0.1:{server.port}"
    answer = http_clients.get(f"{base}/metrics", timeout=10)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert families(answer.content)["mailintake_polls"] == [({"mailbox": "a"}, 2.0)]
    assert http_clients.get(f"{base}/", timeout=10).status_code == 404
    assert http_clients.get(f"{base}/metrics/x", timeout=10).status_code == 404


def test_a_taken_port_fails_to_bind(server: MetricsServer) -> None:
    with pytest.raises(OSError, match="in use"):
        MetricsServer("127.0.0.1", server.port)


def test_the_default_scrape_is_the_process_registry() -> None:
    names = {f.name for f in text_string_to_metric_families(Scrape().render().decode())}
    assert {"mailintake_polls", "mailintake_messages", "mailintake_poll_seconds"} <= names
