"""``mailintake alerts test``, run as a user runs it: per channel ok or the reason."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.support.alerts import alerts_section
from tests.support.cli import run_in as run
from tests.support.http_receiver import Receiver
from tests.support.smtp import SmtpServer


def test_alerts_test_says_ok_or_why_per_channel(
    home: Path, database_url: str, tmp_path: Path, hook: Receiver, smtp: SmtpServer
) -> None:
    missing = run(home, database_url, "alerts", "test")
    assert missing.returncode == 2
    assert "no alert channels" in missing.stdout

    nowhere = {"name": "nowhere", "type": "webhook", "url": "http://127.0.0.1:9/alerts"}
    section = alerts_section(hook, smtp, {**nowhere, "timeout": 2})
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
