"""One message the server cannot give never stops a mailbox: on IMAP (a message file Dovecot
cannot read: ``* BYE FETCH failed``), POP3 (its RETR answered -ERR) and Graph (``$value``
failing for one item), the others are imported, the poisoned one is listed with its reason,
tried again on its own back-off, parked after ``max_tries``, and retried or skipped by a
person. A failure that is not the message's charges no message."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from mailintake.engine.factories import build_source
from mailintake.engine.poll import Poller, PollResult
from mailintake.sources.base import MailSource, TokenProvider
from mailintake.store import import_views
from mailintake.store.repo import Store
from tests.support.clock import T0, Clock
from tests.support.dovecot import MailServer
from tests.support.mail import (
    cure,
    dovecot_mailbox,
    imported,
    message_file,
    poison,
    raw,
)


def problems(store: Store, name: str = "box") -> list[dict[str, Any]]:
    with store.read() as repo:
        return import_views.problems(repo.conn, name)


def counts(result: PollResult) -> tuple[int, int, int, str | None]:
    return result.imported, result.failed, result.waiting, result.error


def mailbox(server: MailServer, store: Store, out: Path, protocol: str, user: str) -> None:
    after_import = "mark_read" if protocol == "imap" else "delete"
    dovecot_mailbox(store, server, out, "box", user, protocol, after_import, max_tries=3)


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_a_poisoned_message_fails_alone_is_retried_with_back_off_then_parked(
    store: Store, home: Path, tmp_path: Path, mail_server: MailServer, protocol: str
) -> None:
    dovecot = mail_server.dovecot
    user = mail_server.fresh_user("poison")
    messages = [raw(n) for n in range(40)]
    dovecot.deliver_many(user, messages)
    poisoned = messages[19]
    poison(dovecot, user, poisoned)
    out = tmp_path / "out"
    mailbox(mail_server, store, out, protocol, user)
    clock = Clock()
    poller = Poller(store, home, clock=clock)

    assert counts(poller.poll("box")) == (39, 1, 0, None)
    assert imported(out, "box") == set(messages) - {poisoned}
    [listed] = problems(store)
    assert (listed["status"], listed["tries"]) == ("failed", 1)
    assert listed["next_try_at"] == (T0 + timedelta(minutes=1)).isoformat()
    assert listed["size"] == len(poisoned)  # from the listing (its file name)
    reason = "UID 20" if protocol == "imap" else "RETR of message"
    assert reason in listed["reason"], listed["reason"]

    later = [raw(100 + n) for n in range(5)]  # mail that arrives behind it is imported
    dovecot.deliver_many(user, later)
    clock.advance(seconds=30)  # its next try is not due
    assert counts(poller.poll("box")) == (5, 0, 1, None)
    assert imported(out, "box") == set(messages + later) - {poisoned}

    clock.advance(seconds=31)  # due: tried, failed again, the next try 5 minutes later
    assert counts(poller.poll("box")) == (0, 1, 0, None)
    [listed] = problems(store)
    assert (listed["status"], listed["tries"]) == ("failed", 2)
    assert listed["next_try_at"] == (clock.now + timedelta(minutes=5)).isoformat()

    clock.advance(minutes=5)  # the third try: max_tries 3 parks it
    assert counts(poller.poll("box")) == (0, 1, 0, None)
    [listed] = problems(store)
    assert (listed["status"], listed["tries"], listed["next_try_at"]) == ("parked", 3, None)

    clock.advance(days=30)  # parked: never tried again by itself
    assert counts(poller.poll("box")) == (0, 0, 1, None)

    cure(dovecot, user, poisoned)  # a person fixed it and says: retry now
    with store.begin() as repo:
        assert import_views.retry_now(repo.conn, "box", listed["key"])
    assert counts(poller.poll("box")) == (1, 0, 0, None)
    assert imported(out, "box") == set(messages + later)
    assert problems(store) == []


def test_imap_a_message_the_listing_fails_on_is_fetched_alone(
    store: Store, home: Path, tmp_path: Path, mail_server: MailServer
) -> None:
    """Without its size in its name, Dovecot fails the listing's RFC822.SIZE on it too: the
    listing is narrowed down as well, and the message is listed without a size."""
    dovecot = mail_server.dovecot
    user = mail_server.fresh_user("poison")
    messages = [raw(n) for n in range(12)]
    dovecot.deliver_many(user, messages)
    message_file(dovecot, user, messages[3]).chmod(0)
    out = tmp_path / "out"
    mailbox(mail_server, store, out, "imap", user)
    assert counts(Poller(store, home, clock=Clock()).poll("box")) == (11, 1, 0, None)
    assert imported(out, "box") == set(messages) - {messages[3]}
    [listed] = problems(store)
    assert (listed["status"], listed["size"]) == ("failed", None)
    assert "UID 4 (fetched alone): * BYE FETCH failed" in listed["reason"]


def test_a_session_that_cannot_be_had_again_charges_no_message(
    store: Store, home: Path, tmp_path: Path, mail_server: MailServer
) -> None:
    """After the BYE the source signs in again, and the server refuses the token: that is
    the pass's failure, not the message's. The next pass charges it."""
    dovecot = mail_server.dovecot
    user = mail_server.fresh_user("poison")
    messages = [raw(n) for n in range(6)]
    dovecot.deliver_many(user, messages)
    poison(dovecot, user, messages[2])
    out = tmp_path / "out"
    mailbox(mail_server, store, out, "imap", user)

    def refused_again(
        spec: Any, token: TokenProvider, _renew: Any = None, **kwargs: Any
    ) -> MailSource:
        tokens = iter([token()])  # signed in once; every token after it, renewed too, refused
        return build_source(spec, lambda: next(tokens, "refused"), lambda: "refused", **kwargs)

    result = Poller(store, home, clock=Clock(), source_factory=refused_again).poll("box")
    assert result.error is not None
    assert "refused the token" in result.error
    assert problems(store) == []  # nothing charged
    assert counts(Poller(store, home, clock=Clock()).poll("box")) == (5, 1, 0, None)
    assert [p["tries"] for p in problems(store)] == [1]
