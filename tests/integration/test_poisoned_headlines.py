"""Dovecot gives the Subject and From of a message whose file it can no longer read when
they are in its cache (a client asked for them before): the message fails alone and is
shown with them. Not cached, Dovecot ends the session on that request too (``* BYE``):
they stay unknown, and the others are fetched all the same."""

from __future__ import annotations

import pytest

from mailintake.errors import MessageUnavailable
from tests.support.dovecot import MailServer
from tests.support.mail import imap_source, message_file


def message(n: int) -> bytes:
    return (
        b"From: =?utf-8?q?J=C3=BCrgen?= <j%d@example.com>\r\nSubject: =?utf-8?q?Rechnung_"
        b"M=C3=A4rz?= %d\r\nMessage-ID: <m%d@example.com>\r\n\r\nbody %d\r\n" % (n, n, n, n)
    )


@pytest.mark.parametrize("cached", [True, False])
def test_imap_a_message_dovecot_cannot_read_comes_with_its_cached_subject(
    mail_server: MailServer, cached: bool
) -> None:
    dovecot = mail_server.dovecot
    user = mail_server.fresh_user("headline")
    messages = [message(n) for n in range(5)]
    dovecot.deliver_many(user, messages)
    source = imap_source(mail_server, user)
    source.open()
    try:
        items = source.list_items()
        if cached:  # a client looked at it: Dovecot keeps the fields in its cache
            assert source.client.fetch([3], ["BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)]"])
        message_file(dovecot, user, messages[2]).chmod(0)  # Dovecot cannot read it
        got = list(source.fetch(items))
    finally:
        source.close()
    assert [b for _i, b in got if isinstance(b, bytes)] == messages[:2] + messages[3:]
    [(failed, why)] = [(i, b) for i, b in got if isinstance(b, MessageUnavailable)]
    assert failed.source["uid"] == 3
    expected = ("Rechnung März 2", "Jürgen <j2@example.com>") if cached else (None, None)
    assert (failed.subject, failed.sender) == expected
    assert "UID 3 (fetched alone)" in str(why)
