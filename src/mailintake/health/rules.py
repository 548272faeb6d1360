"""The health rules: from one mailbox's facts and the time now, its health, why, since when
and what a person does about it. Pure: no store, no clock of its own.

In order, the first that applies:
- disabled: the mailbox is not enabled;
- needs_a_person: its authorization state waits for a person (signing in, a new password, a
  settings fix) — polling stops until then;
- failing: ``FAILING_AFTER`` or more polls in a row failed;
- lagging: no successful poll for ``LAGGING_INTERVALS`` poll intervals;
- healthy otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from mailintake.config.matrix import USER_GRANTS
from mailintake.config.resolve import DEFAULT_POLL_INTERVAL
from mailintake.enums import AuthState, Health
from mailintake.store.health import MailboxFacts
from mailintake.store.mailboxes import Schedule

FAILING_AFTER = 3  # failed polls in a row
LAGGING_INTERVALS = 3  # poll intervals without a successful poll
WAITING_FOR_A_PERSON = frozenset(
    {
        AuthState.NOT_AUTHORIZED,
        AuthState.REAUTHORIZATION_REQUIRED,
        AuthState.PASSWORD_UPDATE_REQUIRED,
        AuthState.ERROR,
    }
)
# Worst first: the order the dashboard lists mailboxes in.
ORDER = (Health.NEEDS_PERSON, Health.FAILING, Health.LAGGING, Health.DISABLED, Health.HEALTHY)


def waits_for_a_person(auth_state: str, oauth: bool, grant_type: str | None) -> bool:
    """Whether polling must wait until a person acts: signs in (a grant a person signs in
    with, never authorized yet), authorizes again, updates a password, fixes an error."""
    if auth_state not in WAITING_FOR_A_PERSON or not oauth:
        return False
    return auth_state != AuthState.NOT_AUTHORIZED or grant_type in USER_GRANTS


def mailbox_waits_for_a_person(mailbox: Schedule) -> bool:
    """``waits_for_a_person`` for a mailbox as the scheduler reads it."""
    return waits_for_a_person(mailbox.auth_state, mailbox.oauth, mailbox.grant_type)


@dataclass(frozen=True)
class Assessment:
    mailbox: str
    health: Health
    reason: str  # why, in a sentence
    since: datetime  # when this health began (UTC)
    action: str  # what a person does about it ("" when nothing)


def _person_action(name: str, state: str) -> str:
    if state == AuthState.NOT_AUTHORIZED:
        return f"sign in once: mailintake authorize {name} (or Authorize on its page)"
    if state == AuthState.REAUTHORIZATION_REQUIRED:
        return f"authorize it again: mailintake authorize {name} (or Authorize on its page)"
    if state == AuthState.PASSWORD_UPDATE_REQUIRED:
        return f"set its new password (oauth.password): mailintake mailboxes edit {name}"
    return f"fix its sign-in settings as the reason says, then: mailintake authorize {name}"


def _decide(f: MailboxFacts, now: datetime) -> tuple[Health, str, datetime | None, str]:
    """Health, reason, the time it began when the facts tell it, and the action."""
    name = f.name
    if not f.enabled:
        return (
            Health.DISABLED,
            "disabled: not polled",
            f.updated_at,
            (f"enable it to import again: mailintake mailboxes enable {name}"),
        )
    if waits_for_a_person(f.auth_state, f.oauth is not None, f.grant_type):
        reason = f.auth_detail or f"authorization state {f.auth_state}"
        return Health.NEEDS_PERSON, reason, None, _person_action(name, f.auth_state)
    if f.failures_in_a_row >= FAILING_AFTER:
        reason = f"{f.failures_in_a_row} polls in a row failed; the last: {f.last_error}"
        return (
            Health.FAILING,
            reason,
            f.first_failure_at,
            (f"fix what the last error says; mailintake poll {name} tries it now"),
        )
    interval = timedelta(seconds=f.poll_interval or DEFAULT_POLL_INTERVAL)
    # An edit restarts the count: the scheduler polls a changed mailbox afresh.
    base = max(f.last_success_at or f.created_at, f.updated_at)
    overdue = base + LAGGING_INTERVALS * interval
    if now >= overdue:
        last = f"{f.last_success_at:%Y-%m-%d %H:%M} UTC" if f.last_success_at else "never"
        reason = (
            f"no successful poll for {LAGGING_INTERVALS} poll intervals "
            f"({int(interval.total_seconds())} s each); last success: {last}"
        )
        return (
            Health.LAGGING,
            reason,
            overdue,
            (
                "check that mailintake serve or a worker is running and reaches the mail server; "
                f"mailintake poll {name} tries it now"
            ),
        )
    if f.last_success_at is None:
        return Health.HEALTHY, "not polled successfully yet: its first poll is due", base, ""
    return Health.HEALTHY, "polls succeed", f.last_success_at, ""


def assess(f: MailboxFacts, now: datetime) -> Assessment:
    """The mailbox's health now. Since when: kept from the recorded health while it is the
    same; otherwise when the facts say it began, or now."""
    health, reason, began, action = _decide(f, now)
    if f.health == health and f.health_since is not None:
        since = f.health_since
    else:
        since = began if began is not None and began <= now else now
    return Assessment(f.name, health, reason, since, action)


def worst_first(assessments: list[Assessment]) -> list[Assessment]:
    """Needs a person first, then failing, lagging, disabled, healthy; by name within."""
    return sorted(assessments, key=lambda a: (ORDER.index(a.health), a.mailbox))
