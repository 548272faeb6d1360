"""``mailintake worker --metrics-port``: a real worker process polls a real Dovecot mailbox
and answers Prometheus scrapes over HTTP with what it did."""

from __future__ import annotations

import os
import re
import signal
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mailintake.runtime import open_store
from mailintake.services.apply import apply_document
from mailintake.settings import Settings
from sandbox import http_clients
from sandbox.ports import free_port
from tests.support import launcher
from tests.support.dovecot import DAEMON_APP, DOMAIN, MailServer
from tests.support.mail import raw
from tests.support.oauth import microsoft_at

ROOT = Path(__file__).resolve().parents[2]
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    """Every sample of a scrape, by name and labels."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(found: Samples, name: str, **labels: str) -> float | None:
    return found.get((name, frozenset(labels.items())))


@pytest.fixture
def fleet_settings(home: Path, postgres_url: str) -> Settings:
    """The fleet's database: PostgreSQL."""
    return Settings(home=home, database_url=postgres_url)


def start_worker(settings: Settings, *args: str) -> launcher.Launched:
    env = {
        **os.environ,
        "MAILINTAKE_HOME": str(settings.home),
        "MAILINTAKE_DATABASE_URL": settings.database_url or "",
    }
    env.pop("MAILINTAKE_METRICS_PORT", None)
    return launcher.start(["-m", "mailintake", "worker", *args], env=env, cwd=ROOT)


@pytest.fixture
def stopped() -> Iterator[list[launcher.Launched]]:
    """Workers started by the test, stopped (Ctrl-C, then killed) when it ends."""
    started: list[launcher.Launched] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=30)


def scrape_until(url: str, done: str, mailbox: str, deadline: float) -> Samples:
    """Scrapes until ``done``{mailbox, outcome=ok} counts a pass (or the deadline passes)."""
    found: Samples = {}
    while time.monotonic() < deadline:
        try:
            answer = http_clients.get(url, timeout=10)
        except httpx2.TransportError:
            time.sleep(0.2)  # not listening yet
            continue
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
        found = samples(answer.text)
        if value(found, done, mailbox=mailbox, outcome="ok"):
            return found
        time.sleep(0.3)
    raise AssertionError(f"no successful poll of {mailbox} scraped before the deadline")


@pytest.mark.timeout(180)
def test_worker_serves_what_it_polled(
    fleet_settings: Settings,
    mail_server: MailServer,
    tmp_path: Path,
    stopped: list[launcher.Launched],
) -> None:
    server, dovecot = mail_server, mail_server.dovecot
    mailbox = server.add_user(f"metrics-{uuid.uuid4().hex[:8]}@{DOMAIN}")
    dovecot.add_delegate(DAEMON_APP, mailbox)
    dovecot.deliver_many(mailbox, [raw(1), raw(2), raw(3)])
    out = tmp_path / "out"
    store = open_store(fleet_settings)
    try:
        apply_document(
            store,
            {
                "authorization_servers": [microsoft_at(server.idp.base_url)],
                "outputs": [{"name": "capture", "type": "folder", "path": str(out)}],
                "mailboxes": [
                    {
                        "name": "metered",
                        "protocol": "imap",
                        "host": dovecot.host,
                        "port": dovecot.imap_port,
                        "security": "none",
                        "username": mailbox,
                        "output": "capture",
                        "oauth": server.app_grant(),
                    }
                ],
            },
            {},
        )
    finally:
        store.engine.dispose()
    port = free_port()
    started = time.time()
    worker = start_worker(fleet_settings, "--concurrency", "3", "--metrics-port", str(port))
    stopped.append(worker)
    url = f"http://127.0.0.1:{port}/metrics"

    found = scrape_until(url, "mailintake_polls_total", "metered", time.monotonic() + 120)

    assert value(found, "mailintake_messages_total", mailbox="metered", outcome="imported") == 3
    assert value(found, "mailintake_poll_seconds_count", mailbox="metered") == value(
        found, "mailintake_polls_total", mailbox="metered", outcome="ok"
    )
    assert value(found, "mailintake_poll_seconds_sum", mailbox="metered") > 0  # type: ignore[operator]
    assert value(
        found, "mailintake_token_requests_total", mailbox="metered", grant="client_credentials",
        outcome="ok",
    ) == 1  # fmt: skip
    assert len(list(out.glob("metered/*/*/message.eml"))) == 3
    assert value(found, "mailintake_poll_concurrency") == 3
    assert 0 <= value(found, "mailintake_polls_running") <= 3  # type: ignore[operator]
    assert value(found, "mailintake_mailbox_lag_seconds", mailbox="metered") is not None
    ((beat, at),) = [
        (dict(labels)["worker"], v)
        for (name, labels), v in found.items()
        if name == "mailintake_worker_heartbeat_timestamp_seconds"
    ]
    assert re.fullmatch(rf"[^:]+:{worker.pid}:[0-9a-f]{{12}}", beat), beat
    assert started - 5 <= at <= time.time() + 5
    assert http_clients.get(f"http://127.0.0.1:{port}/other", timeout=10).status_code == 404

    worker.send_signal(signal.SIGINT)  # Ctrl-C: the worker stops, and so does its /metrics
    _, err = worker.communicate(timeout=60)
    assert worker.returncode == 0, err
    assert f"metrics on http://127.0.0.1:{port}/metrics" in err
    assert f"mailintake worker {beat}: polling" in err
    with pytest.raises(httpx2.TransportError):
        http_clients.get(url, timeout=5)


def test_a_metrics_port_in_use_is_named(
    fleet_settings: Settings, stopped: list[launcher.Launched]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        worker = start_worker(fleet_settings, "--metrics-port", str(port))
        stopped.append(worker)
        _, err = worker.communicate(timeout=60)
    assert worker.returncode == 2, err
    assert f"--metrics-port: cannot listen on 127.0.0.1:{port}: Address already in use" in err


def test_a_metrics_port_out_of_range_is_a_usage_error(
    fleet_settings: Settings, stopped: list[launcher.Launched]
) -> None:
    worker = start_worker(fleet_settings, "--metrics-port", "70000")
    stopped.append(worker)
    _, err = worker.communicate(timeout=60)
    assert worker.returncode == 2, err
    assert "Invalid value for '--metrics-port'" in err
    assert "less than or equal to 65535" in err
