"""The alerts section: every problem named by its field, defaults, and what it chooses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mailintake.config.validate import Context, validate_document
from mailintake.errors import ConfigError


def problems(document: Any, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        validate_document(document, Context(environ=environ or {}))
    return caught.value.problems


def mail(**fields: Any) -> dict[str, Any]:
    return {
        "name": "ops-mail",
        "type": "email",
        "host": "smtp.example.com",
        "from": "mailintake@example.com",
        "to": ["ops@example.com"],
        **fields,
    }


def test_a_valid_section_with_its_defaults() -> None:
    document = {
        "alerts": {
            "channels": [
                {"name": "hook", "type": "webhook", "url": "https://hooks.example.com/a"},
                mail(username="u", password="${env:PW}"),
            ]
        }
    }
    validated = validate_document(document, Context(environ={"PW": "secret"}))
    alerts = validated.alerts
    assert alerts is not None
    assert alerts.reminder_seconds == 86400
    assert alerts.alerts_on("health", "failing")
    assert alerts.alerts_on("certificate", "expired")
    email = alerts.channels[1]
    assert email.sender == "mailintake@example.com"
    assert email.password is not None
    assert email.password.get_secret_value() == "secret"
    assert validated.env_templates[("alerts.channels", "ops-mail", "password")] == "${env:PW}"


def test_no_section_is_none_and_kinds_and_states_choose() -> None:
    assert validate_document({}, Context()).alerts is None
    alerts = validate_document(
        {"alerts": {"kinds": ["health"], "states": ["failing", "needs_a_person"]}}, Context()
    ).alerts
    assert alerts is not None
    assert alerts.alerts_on("health", "failing")
    assert not alerts.alerts_on("health", "lagging")
    assert not alerts.alerts_on("client_secret", "failing")


def test_every_problem_names_its_field(tmp_path: Path) -> None:
    document = {
        "alerts": {
            "kinds": ["health", "mood"],
            "reminder_interval": 3600,
            "colour": "red",
            "channels": [
                {"name": "hook", "type": "webhook", "url": "http://hooks.example.com/a"},
                {"name": "hook2", "type": "webhook", "host": "smtp.example.com"},
                {"name": "pager", "type": "sms"},
                mail(
                    security="none",
                    password="x",
                    to=["not an address"],
                    ca_file="ca.pem",
                    url="https://x.example.com",
                ),
                mail(name="other", **{"from": "nobody"}, to=[], port=70000, host=None),
                mail(ca_file=str(tmp_path / "missing.pem")),
            ],
        }
    }
    found = problems(document)
    assert found == [
        "alerts.kinds[1]: must be 'health', 'refresh_token', 'client_secret' or 'certificate'",
        "alerts.colour: unknown field",
        "alerts.channels[hook].url: must use https (plain http is only allowed on a loopback "
        "host): 'http://hooks.example.com/a'",
        "alerts.channels[hook2].host: not applicable to type webhook (remove it)",
        "alerts.channels[hook2].url: required for type webhook",
        "alerts.channels[pager].type: must be 'webhook' or 'email'",
        "alerts.channels[ops-mail].url: not applicable to type email (remove it)",
        "alerts.channels[ops-mail].security: none is only allowed for localhost/127.0.0.1 (a "
        "password and the alerts must not cross a network in clear): use starttls or tls",
        "alerts.channels[ops-mail].password: needs username",
        "alerts.channels[ops-mail].to[0]: 'not an address' is not an email address",
        "alerts.channels[ops-mail].ca_file: 'ca.pem' must be an absolute path",
        "alerts.channels[other].port: must be less than or equal to 65535",
        "alerts.channels[other].host: required for type email (the SMTP server)",
        "alerts.channels[other].from: 'nobody' is not an email address",
        "alerts.channels[other].to: required for type email: a list of one or more addresses",
        "alerts.channels[ops-mail]: the name 'ops-mail' is used twice in alerts.channels",
        f"alerts.channels[ops-mail].ca_file: no such file: {tmp_path / 'missing.pem'}",
        "alerts.reminder_interval: must be at least 86400 seconds (24 hours): a reminder is "
        "sent at most daily",
    ]


def test_secrets_of_channels_follow_the_document_rules() -> None:
    document = {
        "alerts": {
            "channels": [
                {
                    "name": "hook",
                    "type": "webhook",
                    "url": "https://user:pw@hooks.example.com/a",
                    "headers": {"Authorization": "${env:MISSING}", "X-Key": "<redacted>"},
                },
                mail(username="u", password="<redacted>"),
            ]
        }
    }
    found = problems(document)
    assert (
        "alerts.channels[hook].headers.Authorization: environment variable MISSING is not set"
        in found
    )
    assert (
        "alerts.channels[hook].url: must not contain a user name or password; send them in "
        "headers (e.g. Authorization), which are stored encrypted"
    ) in found
    assert any(p.startswith("alerts.channels[ops-mail].password: is <redacted>") for p in found)
    assert any(p.startswith("alerts.channels[hook].headers.X-Key: is <redacted>") for p in found)
    assert not any("pw@" in p for p in found)


def test_loopback_smtp_may_go_without_tls() -> None:
    document = {"alerts": {"channels": [mail(host="127.0.0.1", security="none", port=2525)]}}
    alerts = validate_document(document, Context()).alerts
    assert alerts is not None
    assert alerts.channels[0].security == "none"
