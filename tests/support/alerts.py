"""The alert channels of a configuration document, pointing at the ``hook`` (an HTTP
receiver) and ``smtp`` (an SMTP server) fixtures of tests/integration/conftest.py."""

from __future__ import annotations

from typing import Any

from tests.support.http_receiver import Receiver
from tests.support.smtp import SmtpServer


def alerts_section(hook: Receiver, smtp: SmtpServer, *more: dict[str, Any]) -> dict[str, Any]:
    """``alerts:`` with the channels "ops-hook" and "ops-mail" (its password read from
    SMTP_PASSWORD: give it ``smtp.password``), then ``more``."""
    return {
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
            *more,
        ]
    }
