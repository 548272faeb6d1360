"""The workers' heartbeats as Prometheus reads them, from the store at each scrape:
``mailintake_worker_heartbeat_timestamp_seconds{worker}`` for every worker the store lists.
A worker that stopped in order is no longer listed; one that died stays listed with its
last heartbeat, growing old, until the store forgets it (store/workers.py) — which is what
an alert on a heartbeat's age needs to see."""

from __future__ import annotations

from mailintake.observability.exposition import HeartbeatCollector, Scrape
from mailintake.observability.metrics import REGISTRY
from mailintake.store import workers
from mailintake.store.repo import Store


def heartbeat_collector(store: Store) -> HeartbeatCollector:
    def read() -> dict[str, float]:
        with store.read() as repo:
            return {w.id: w.heartbeat_at.timestamp() for w in workers.listed(repo.conn)}

    return HeartbeatCollector(read)


def fleet_scrape(store: Store) -> Scrape:
    """What ``/metrics`` answers in a process with ``store``: the process's registry and the
    workers' heartbeats."""
    return Scrape(REGISTRY, heartbeat_collector(store))
