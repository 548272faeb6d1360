"""Serving the metrics: ``/metrics`` on a small threaded HTTP server of its own (``mailintake
worker --metrics-port``), and the scrape view that joins the process's registry with the
collectors that read the shared state when scraped (workers' heartbeats)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from mailintake.observability.logging import get_logger
from mailintake.observability.metrics import REGISTRY

log = get_logger(__name__)
PATH = "/metrics"


class Scrape(Collector):
    """What one scrape returns: every family of each part, in order."""

    def __init__(self, *parts: Collector) -> None:
        self.parts = parts or (REGISTRY,)

    def collect(self) -> Iterable[Metric]:
        for part in self.parts:
            yield from part.collect()

    def render(self) -> bytes:
        return generate_latest(self)


class HeartbeatCollector(Collector):
    """``mailintake_worker_heartbeat_timestamp_seconds{worker}``: each live worker's last
    heartbeat (Unix time), read when scraped. ``heartbeats`` returns them by worker name;
    when it fails (the database is away) the family is left out and the scrape still
    answers with the rest — the missing heartbeat is what the alert sees."""

    NAME = "mailintake_worker_heartbeat_timestamp_seconds"

    def __init__(self, heartbeats: Callable[[], Mapping[str, float]]) -> None:
        self.heartbeats = heartbeats

    def collect(self) -> Iterable[Metric]:
        try:
            beats = dict(self.heartbeats())
        except Exception as exc:  # a scrape never fails for the store's sake
            log.warning("metrics.heartbeats_unread", error=str(exc))
            return
        family = GaugeMetricFamily(
            self.NAME, "Each live worker's last heartbeat (Unix time)", labels=["worker"]
        )
        for worker, at in sorted(beats.items()):
            family.add_metric([worker], at)
        yield family


class _Handler(BaseHTTPRequestHandler):
    server: MetricsServer

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] != PATH:
            self._answer(404, b"not found; metrics are at /metrics\n", "text/plain")
            return
        try:
            body = self.server.scrape.render()
        except Exception as exc:
            log.error("metrics.scrape_failed", error=str(exc))
            self._answer(500, b"metrics could not be collected\n", "text/plain")
            return
        self._answer(200, body, CONTENT_TYPE_PLAIN_0_0_4)

    def _answer(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Scrapes come every few seconds: no line each."""


class MetricsServer(ThreadingHTTPServer):
    """Answers ``GET /metrics`` with ``scrape`` on ``host:port`` (port 0: a free one), on a
    daemon thread; ``close()`` stops it. Binding fails with ``OSError`` (port in use)."""

    daemon_threads = True

    def __init__(self, host: str, port: int, scrape: Scrape | None = None) -> None:
        self.scrape = scrape or Scrape()
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host.strip("[]"), port), _Handler)
        self._thread = threading.Thread(target=self.serve_forever, name="metrics", daemon=True)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def start(self) -> MetricsServer:
        self._thread.start()
        return self

    def close(self) -> None:
        if self._thread.is_alive():
            self.shutdown()
        self.server_close()
