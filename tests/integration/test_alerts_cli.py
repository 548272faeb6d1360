"""``mailintake alerts test``, run as a user runs it: per channel ok or the reason."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.support.cli import Completed, run_cli
from tests.support.http_receiver import Receiver, http_receiver
from tests.support.smtp import SmtpServer, smtp_server


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with http_receiver() as receiver:
        yield receiver


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpServer]:
    with smtp_server(tmp_path) as server:
        yield server


def run(home: Path, database_url: str, *args: str, **env: str) -> Completed:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MAILINTAKE_")}
    environ.update(MAILINTAKE_HOME=str(home), MAILINTAKE_DATABASE_URL=database_url, **env)
    return run_cli(args, env=environ)


def test_alerts_test_says_ok_or_why_per_channel(
    home: Path, database_url: str, tmp_path: Path, hook: Receiver, smtp: SmtpServer
) -> None:
    missing = run(home, database_url, "alerts", "test")
    assert missing.returncode == 2
    assert "no alert channels" in missing.stdout

    section = {
        "channels": [
            {"name": "ops-hook", "type": "webhook", "url": hook.url},
            {
                "name": "ops-mail",
                "type": "email",
                "host": smtp.host,
                "port": smtp.port,
                "username": smtp.username,
                "password": "${env:SMTP_PASSWORD}",
                "from": "mailintake@example.com",
                "to": ["ops@example.com"],
                "ca_file": smtp.ca_file,
            },
            {
                "name": "nowhere",
                "type": "webhook",
                "url": "http://127.0.0.1:9/alerts",
                "timeout": 2,
            },
        ]
    }
    config = tmp_path / "mailintake.yaml"
    config.write_text(yaml.safe_dump({"alerts": section}))
    applied = run(home, database_url, "apply", str(config), SMTP_PASSWORD=smtp.password)
    assert applied.returncode == 0, applied.stderr

    tested = run(home, database_url, "alerts", "test")
    assert tested.returncode == 4
    lines = tested.stdout.splitlines()
    assert lines[:2] == ["ops-hook: ok", "ops-mail: ok"]
    assert lines[2].startswith("nowhere: ")
    assert "127.0.0.1:9" in lines[2]
    assert [r.body["event"] for r in hook.requests] == ["test"]
    assert [str(m.message["Subject"]) for m in smtp.messages] == ["[mailintake] test alert"]
    assert smtp.password not in tested.stdout + tested.stderr

    exported = run(home, database_url, "export")
    assert "password: ${env:SMTP_PASSWORD}" in exported.stdout
    assert smtp.password not in exported.stdout
