"""The health rules on a controllable clock: disabled, needs_a_person, failing after three
failed polls in a row, lagging after three intervals without a successful poll, healthy;
and since when, kept while the health stays the same."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

from mailintake.enums import AuthState, Health
from mailintake.health.rules import assess, waits_for_a_person, worst_first
from mailintake.store.health import MailboxFacts

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def facts(**changes: Any) -> MailboxFacts:
    base = MailboxFacts(
        name="invoices",
        enabled=True,
        auth_state=AuthState.AUTHORIZED,
        auth_detail=None,
        authorization_server="MICROSOFT",
        definition={
            "poll_interval": 60,
            "oauth": {"grant_type": "authorization_code", "client_id": "x"},
        },
        last_poll_at=T0,
        last_error=None,
        last_success_at=T0,
        failures_in_a_row=0,
        first_failure_at=None,
        health=None,
        health_since=None,
        created_at=T0 - timedelta(days=1),
        updated_at=T0 - timedelta(days=1),
    )
    return dataclasses.replace(base, **changes)


def test_a_mailbox_that_polls_is_healthy_since_its_last_success() -> None:
    a = assess(facts(), T0 + timedelta(seconds=30))
    assert (a.health, a.since, a.action) == (Health.HEALTHY, T0, "")


def test_lagging_after_three_intervals_without_a_successful_poll() -> None:
    f = facts()
    assert assess(f, T0 + timedelta(seconds=179)).health == Health.HEALTHY
    a = assess(f, T0 + timedelta(seconds=180))
    assert a.health == Health.LAGGING
    assert a.since == T0 + timedelta(seconds=180)
    assert "3 poll intervals" in a.reason
    assert "mailintake poll invoices" in a.action


def test_lagging_counts_the_mailboxs_own_interval() -> None:
    f = facts(definition={"poll_interval": 3600, "oauth": {"grant_type": "client_credentials"}})
    assert assess(f, T0 + timedelta(hours=2, minutes=59)).health == Health.HEALTHY
    assert assess(f, T0 + timedelta(hours=3)).health == Health.LAGGING


def test_a_mailbox_never_polled_lags_three_intervals_after_it_was_added() -> None:
    f = facts(last_success_at=None, last_poll_at=None, created_at=T0, updated_at=T0)
    assert assess(f, T0 + timedelta(seconds=120)).health == Health.HEALTHY
    a = assess(f, T0 + timedelta(minutes=5))
    assert a.health == Health.LAGGING
    assert "last success: never" in a.reason


def test_failing_from_the_third_failed_poll_in_a_row() -> None:
    now = T0 + timedelta(minutes=3)
    first = T0 + timedelta(minutes=1)
    two = facts(failures_in_a_row=2, first_failure_at=first, last_error="connection refused")
    assert assess(two, T0 + timedelta(seconds=150)).health == Health.HEALTHY
    three = dataclasses.replace(two, failures_in_a_row=3)
    a = assess(three, now)
    assert a.health == Health.FAILING
    assert a.since == first  # since the run of failures began
    assert a.reason == "3 polls in a row failed; the last: connection refused"


def test_needs_a_person_for_the_states_that_wait_for_one() -> None:
    for state in (
        AuthState.REAUTHORIZATION_REQUIRED,
        AuthState.PASSWORD_UPDATE_REQUIRED,
        AuthState.ERROR,
        AuthState.NOT_AUTHORIZED,
    ):
        a = assess(facts(auth_state=state, auth_detail="refused: AADSTS50173"), T0)
        assert a.health == Health.NEEDS_PERSON, state
        assert a.reason == "refused: AADSTS50173"
        assert a.action
    # before failing: polling waits for the person, so its failures are not the news
    a = assess(facts(auth_state=AuthState.ERROR, failures_in_a_row=5), T0)
    assert a.health == Health.NEEDS_PERSON


def test_an_application_that_was_never_authorized_needs_no_person() -> None:
    cc = {"oauth": {"grant_type": "client_credentials"}}
    assert not waits_for_a_person(AuthState.NOT_AUTHORIZED, True, "client_credentials")
    a = assess(facts(definition=cc, auth_state=AuthState.NOT_AUTHORIZED), T0)
    assert a.health == Health.HEALTHY


def test_disabled_before_anything_else() -> None:
    disabled_at = T0 - timedelta(hours=5)
    f = facts(enabled=False, auth_state=AuthState.ERROR, updated_at=disabled_at)
    a = assess(f, T0 + timedelta(days=3))
    assert (a.health, a.since) == (Health.DISABLED, disabled_at)
    assert "mailintake mailboxes enable invoices" in a.action


def test_since_is_kept_while_the_health_stays_and_restarts_when_it_changes() -> None:
    recorded = T0 - timedelta(hours=1)
    f = facts(auth_state=AuthState.ERROR, health=Health.NEEDS_PERSON, health_since=recorded)
    assert assess(f, T0).since == recorded
    # A health the facts do not date begins now; a recorded other health is not kept.
    g = dataclasses.replace(f, health=Health.FAILING)
    assert assess(g, T0).since == T0


def test_worst_first() -> None:
    now = T0 + timedelta(seconds=30)
    mailboxes = [
        facts(name="a"),
        facts(name="b", enabled=False),
        facts(name="c", failures_in_a_row=4, first_failure_at=T0),
        facts(name="d", auth_state=AuthState.REAUTHORIZATION_REQUIRED),
        facts(name="e", last_success_at=T0 - timedelta(hours=1)),
    ]
    order = [a.mailbox for a in worst_first([assess(f, now) for f in mailboxes])]
    assert order == ["d", "c", "e", "b", "a"]
