"""Alerts reach a real webhook receiver and a real SMTP server (STARTTLS, AUTH required),
once per change of a condition, a reminder at most daily, and "recovered" when it clears;
two alerters on one PostgreSQL database send each once."""

from __future__ import annotations

import io
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mailintake.alerts.alerter import Alerter, Outcome, build_channel
from mailintake.alerts.conditions import Condition
from mailintake.observability.logging import configure
from mailintake.runtime import open_store
from mailintake.services.apply import apply_document
from mailintake.settings import Settings
from mailintake.store.repo import Store
from tests.support.http_receiver import Receiver, http_receiver
from tests.support.smtp import SmtpServer, smtp_server

START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
HOOK_TOKEN = "hook-Token-7781"


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


class Conditions:
    """The conditions provider the alerter is given: whatever the test says holds now."""

    def __init__(self) -> None:
        self.holding: list[Condition] = []

    def __call__(self, _store: Store, _now: datetime) -> list[Condition]:
        return list(self.holding)


def failing(mailbox: str = "invoices", state: str = "failing") -> Condition:
    return Condition(
        key=f"health:{mailbox}",
        mailbox=mailbox,
        kind="health",
        state=state,
        summary=f"{mailbox}: the last 3 polls failed: authentication refused; check the password",
        since=START - timedelta(minutes=5),
    )


def configure_alerts(store: Store, hook: Receiver, smtp: SmtpServer, **options: Any) -> None:
    document = {
        "alerts": {
            **options,
            "channels": [
                {
                    "name": "ops-hook",
                    "type": "webhook",
                    "url": hook.url,
                    "headers": {"Authorization": "Bearer ${env:HOOK_TOKEN}"},
                    "timeout": 5,
                },
                {
                    "name": "ops-mail",
                    "type": "email",
                    "host": smtp.host,
                    "port": smtp.port,
                    "security": "starttls",
                    "username": smtp.username,
                    "password": "${env:SMTP_PASSWORD}",
                    "from": "mailintake@example.com",
                    "to": ["ops@example.com", "oncall@example.com"],
                    "ca_file": smtp.ca_file,
                },
            ],
        }
    }
    environ = {"HOOK_TOKEN": HOOK_TOKEN, "SMTP_PASSWORD": smtp.password}
    apply_document(store, document, environ)


def events(hook: Receiver) -> list[tuple[str, str, str]]:
    return [(r.body["event"], r.body["key"], r.body["state"]) for r in hook.requests]


def subjects(smtp: SmtpServer) -> list[str]:
    return [str(m.message["Subject"]) for m in smtp.messages]


def test_an_alert_is_sent_once_reminded_daily_and_recovered(
    store: Store, hook: Receiver, smtp: SmtpServer
) -> None:
    configure_alerts(store, hook, smtp)
    clock, conditions = Clock(), Conditions()
    alerter = Alerter(store, conditions, build_channel, clock=clock)

    assert alerter.evaluate() == []  # all well: nothing to say
    conditions.holding = [failing()]
    first = alerter.evaluate()
    assert sorted((o.channel, o.event, o.ok) for o in first) == [
        ("ops-hook", "alert", True),
        ("ops-mail", "alert", True),
    ]
    assert events(hook) == [("alert", "health:invoices", "failing")]
    body = hook.requests[0].body
    assert body == {
        "event": "alert",
        "key": "health:invoices",
        "mailbox": "invoices",
        "kind": "health",
        "state": "failing",
        "summary": failing().summary,
        "since": (START - timedelta(minutes=5)).isoformat(),
        "ends_at": None,
        "sent_at": START.isoformat(),
        "product": "mailintake",
    }
    assert hook.requests[0].headers["Authorization"] == f"Bearer {HOOK_TOKEN}"
    assert hook.requests[0].path == "/alerts"
    assert hook.requests[0].headers["Content-Type"] == "application/json"
    [mail] = smtp.messages
    assert mail.login == smtp.username
    assert mail.sender == "mailintake@example.com"
    assert mail.recipients == ["ops@example.com", "oncall@example.com"]
    assert mail.message["Subject"] == "[mailintake] failing: mailbox invoices"
    assert mail.message["Auto-Submitted"] == "auto-generated"
    text = mail.message.get_content()
    assert failing().summary in text
    assert "key: health:invoices" in text

    clock.now += timedelta(minutes=1)
    assert alerter.evaluate() == []  # the same condition: nothing new
    clock.now = START + timedelta(hours=23, minutes=59)
    assert alerter.evaluate() == []  # a reminder waits a whole day
    clock.now = START + timedelta(hours=24)
    assert {(o.channel, o.event) for o in alerter.evaluate()} == {
        ("ops-hook", "reminder"),
        ("ops-mail", "reminder"),
    }
    assert subjects(smtp)[-1] == "[mailintake] still failing: mailbox invoices"
    clock.now += timedelta(hours=1)
    assert alerter.evaluate() == []

    conditions.holding = [failing(state="needs_a_person")]  # the same key, another state
    assert {(o.channel, o.event, o.state) for o in alerter.evaluate()} == {
        ("ops-hook", "alert", "needs_a_person"),
        ("ops-mail", "alert", "needs_a_person"),
    }
    conditions.holding = []
    assert {(o.channel, o.event) for o in alerter.evaluate()} == {
        ("ops-hook", "recovered"),
        ("ops-mail", "recovered"),
    }
    assert alerter.evaluate() == []
    assert events(hook) == [
        ("alert", "health:invoices", "failing"),
        ("reminder", "health:invoices", "failing"),
        ("alert", "health:invoices", "needs_a_person"),
        ("recovered", "health:invoices", "needs_a_person"),
    ]
    assert subjects(smtp) == [
        "[mailintake] failing: mailbox invoices",
        "[mailintake] still failing: mailbox invoices",
        "[mailintake] needs_a_person: mailbox invoices",
        "[mailintake] recovered: mailbox invoices (was needs_a_person)",
    ]
    assert smtp.refused_logins == []


def test_a_failing_channel_is_tried_again_and_logged_without_secrets(
    store: Store, hook: Receiver, smtp: SmtpServer
) -> None:
    stream = io.StringIO()
    configure("info", stream=stream)
    configure_alerts(store, hook, smtp)
    clock, conditions = Clock(), Conditions()
    alerter = Alerter(store, conditions, build_channel, clock=clock)
    conditions.holding = [failing()]
    hook.fail_with = 503
    outcomes = {o.channel: o for o in alerter.evaluate()}
    assert outcomes["ops-mail"].ok
    assert outcomes["ops-hook"].error == f"{hook.url} answered 503 Service Unavailable"
    assert len(smtp.messages) == 1
    assert hook.requests == []

    clock.now += timedelta(minutes=1)
    assert [(o.channel, o.ok) for o in alerter.evaluate()] == [("ops-hook", False)]
    hook.fail_with = None
    clock.now += timedelta(minutes=1)
    assert [(o.channel, o.event, o.ok) for o in alerter.evaluate()] == [("ops-hook", "alert", True)]
    assert events(hook) == [("alert", "health:invoices", "failing")]
    assert len(smtp.messages) == 1  # the email went once

    log = stream.getvalue()
    assert "alert.not_sent" in log
    assert "503" in log
    assert HOOK_TOKEN not in log
    assert smtp.password not in log


def test_a_condition_not_chosen_is_not_sent(store: Store, hook: Receiver, smtp: SmtpServer) -> None:
    configure_alerts(store, hook, smtp, states=["failing"], kinds=["health", "certificate"])
    clock, conditions = Clock(), Conditions()
    alerter = Alerter(store, conditions, build_channel, clock=clock)
    expiring = Condition(
        key="expiry:client_secret:claims",
        mailbox="claims",
        kind="client_secret",
        state="expiring",
        summary="claims: the client secret ends in 9 days; add a new one",
        since=START,
        ends_at=START + timedelta(days=9),
    )
    conditions.holding = [failing(state="lagging"), expiring]
    assert alerter.evaluate() == []
    conditions.holding = [failing()]
    assert len(alerter.evaluate()) == 2
    assert events(hook) == [("alert", "health:invoices", "failing")]


def test_wrong_smtp_password_is_reported_without_it(store: Store, tmp_path: Path) -> None:
    with smtp_server(tmp_path) as smtp, http_receiver() as hook:
        configure_alerts(store, hook, smtp)
        real = smtp.password
        smtp.password = "another-one"  # the server now expects another password
        conditions = Conditions()
        conditions.holding = [failing()]
        alerter = Alerter(store, conditions, build_channel, clock=Clock())
        outcome = {o.channel: o for o in alerter.evaluate()}["ops-mail"]
        assert outcome.error is not None
        assert outcome.error.startswith(
            f"SMTP server 127.0.0.1:{smtp.port} refused the user name or password: 535"
        )
        assert real not in outcome.error
        assert smtp.messages == []
        assert set(smtp.refused_logins) == {smtp.username}


def test_an_untrusted_certificate_is_refused(tmp_path: Path) -> None:
    from mailintake.alerts.email import EmailChannel
    from mailintake.alerts.message import AlertMessage
    from mailintake.errors import AlertNotSent

    with smtp_server(tmp_path) as smtp:
        channel = EmailChannel(
            "mail",
            host=smtp.host,
            port=smtp.port,
            sender="a@example.com",
            to=["b@example.com"],
            username=smtp.username,
            password=smtp.password,
        )
        message = AlertMessage("test", "test", None, "test", "test", "a test", START, START)
        with pytest.raises(AlertNotSent, match="TLS certificate could not be verified"):
            channel.send(message)
        assert smtp.messages == []


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_alerters_on_one_database_send_once(
    store: Store, settings: Settings, hook: Receiver, smtp: SmtpServer
) -> None:
    configure_alerts(store, hook, smtp)
    other_store = open_store(settings)
    clock, conditions = Clock(), Conditions()
    alerters = [
        Alerter(store, conditions, build_channel, clock=clock),
        Alerter(other_store, conditions, build_channel, clock=clock),
    ]

    def together() -> list[Outcome]:
        barrier = threading.Barrier(len(alerters))
        results: list[list[Outcome]] = [[] for _ in alerters]

        def run(index: int) -> None:
            barrier.wait()
            results[index] = alerters[index].evaluate()

        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(alerters))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return [o for result in results for o in result]

    try:
        names = [f"box{i}" for i in range(5)]
        conditions.holding = [failing(name) for name in names]
        assert len(together()) == 10  # 5 conditions x 2 channels, between the two
        clock.now += timedelta(days=1)
        assert {o.event for o in together()} == {"reminder"}
        conditions.holding = []
        assert {o.event for o in together()} == {"recovered"}
        assert together() == []
        for name in names:
            key = f"health:{name}"
            assert [e for e in events(hook) if e[1] == key] == [
                ("alert", key, "failing"),
                ("reminder", key, "failing"),
                ("recovered", key, "failing"),
            ]
        assert len(smtp.messages) == 15
        assert len(set(subjects(smtp))) == 15 // 3 * 3
    finally:
        other_store.engine.dispose()


def test_implicit_tls_and_a_server_that_wants_tls_first(tmp_path: Path) -> None:
    from mailintake.alerts.email import EmailChannel
    from mailintake.alerts.message import AlertMessage
    from mailintake.errors import AlertNotSent

    message = AlertMessage("test", "test", None, "test", "test", "a test", START, START)
    with smtp_server(tmp_path, implicit_tls=True) as smtp:
        channel = EmailChannel(
            "mail",
            host=smtp.host,
            port=smtp.port,
            security="tls",
            sender="a@example.com",
            to=["b@example.com"],
            username=smtp.username,
            password=smtp.password,
            ca_file=smtp.ca_file,
        )
        channel.send(message)
        assert [str(m.message["Subject"]) for m in smtp.messages] == ["[mailintake] test alert"]
        assert smtp.messages[0].login == smtp.username
    with smtp_server(tmp_path) as smtp:  # STARTTLS required before anything else
        plain = EmailChannel(
            "mail",
            host=smtp.host,
            port=smtp.port,
            security="none",
            sender="a@example.com",
            to=["b@example.com"],
            username=smtp.username,
            password=smtp.password,
        )
        with pytest.raises(AlertNotSent) as refused:
            plain.send(message)
        # before STARTTLS the server offers no AUTH: the password is never sent in clear
        assert str(refused.value) == (
            f"SMTP server 127.0.0.1:{smtp.port}: SMTP AUTH extension not supported by server."
        )
        assert smtp.password not in str(refused.value)
        assert smtp.messages == []


def test_the_loop_outlives_a_failed_evaluation(
    store: Store, hook: Receiver, smtp: SmtpServer
) -> None:
    from mailintake.alerts.runner import AlertLoop

    configure_alerts(store, hook, smtp)
    evaluated = threading.Event()
    calls: list[int] = []

    def conditions(_store: Store, _now: datetime) -> list[Condition]:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("the database went away")
        evaluated.set()
        return [failing()]

    loop = AlertLoop(Alerter(store, conditions, build_channel), period=0.05)
    thread = loop.start()
    try:
        assert evaluated.wait(60)
    finally:
        loop.stop()
        thread.join(60)
    assert not thread.is_alive()
    assert events(hook) == [("alert", "health:invoices", "failing")]
    assert len(smtp.messages) == 1
