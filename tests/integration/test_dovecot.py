"""The Dovecot test server (sandbox/dovecot) proven with the standard library's
imaplib and poplib: OAuth bearer logins checked by introspection at the sandbox identity
provider, TLS, the Exchange-style shared mailbox, and the mail files the tests seed and read."""

from __future__ import annotations

import base64
import imaplib
import poplib
import ssl
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.support.dovecot import (
    ALICE,
    BOB,
    DAEMON_APP,
    DOMAIN,
    MailServer,
    answer_once,
    oauthbearer,
    xoauth2,
)


def message(subject: str, body: str = "Hello.") -> bytes:
    return (
        f"From: sender@example.com\r\nTo: someone@{DOMAIN}\r\nSubject: {subject}\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@example.com>\r\n\r\n{body}\r\n"
    ).encode()


def trusting(mail_server: MailServer) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(mail_server.dovecot.ca_file))


def fetch_all(imap: imaplib.IMAP4, folder: str = "INBOX") -> list[bytes]:
    status, _ = imap.select(folder)
    assert status == "OK"
    status, data = imap.fetch("1:*", "(BODY.PEEK[])")
    assert status == "OK"
    return [item[1] for item in data if isinstance(item, tuple)]


@contextmanager
def pop3(mail_server: MailServer, *, tls: bool = False) -> Iterator[poplib.POP3]:
    dovecot = mail_server.dovecot
    client: poplib.POP3 = (
        poplib.POP3_SSL(dovecot.host, dovecot.pop3s_port, context=trusting(mail_server), timeout=10)
        if tls
        else poplib.POP3(dovecot.host, dovecot.pop3_port, timeout=10)
    )
    try:
        yield client
    finally:
        try:
            client.quit()
        except (poplib.error_proto, OSError):
            client.close()


def pop3_auth(client: poplib.POP3, mechanism: str, payload: bytes, on_error: bytes = b"") -> bytes:
    """``AUTH <mechanism>``, the ``+`` continuation, then the base64 response; on an error
    challenge answers ``on_error`` (raising poplib.error_proto with the server's -ERR)."""
    challenge = client._shortcmd(f"AUTH {mechanism}")  # type: ignore[attr-defined]
    assert challenge.startswith(b"+")
    answer: bytes = client._shortcmd(base64.b64encode(payload).decode())  # type: ignore[attr-defined]
    if answer.startswith(b"+ ") and len(answer) > 2:  # an error challenge
        return client._shortcmd(base64.b64encode(on_error).decode())  # type: ignore[attr-defined, no-any-return]
    return answer


# --- IMAP -----------------------------------------------------------------------------


def test_xoauth2_over_plain_imap_on_loopback_and_fetch_returns_delivered_bytes(
    mail_server: MailServer,
) -> None:
    user = mail_server.fresh_user()
    raw = message("invoice 1", "Ümlaut body ✓".encode().decode())
    mail_server.dovecot.deliver(user, raw)
    token = mail_server.token(user)
    dovecot = mail_server.dovecot
    with imaplib.IMAP4(dovecot.host, dovecot.imap_port, timeout=10) as imap:
        assert "AUTH=XOAUTH2" in imap.capabilities
        assert "AUTH=OAUTHBEARER" in imap.capabilities
        status, _ = imap.authenticate("XOAUTH2", answer_once(xoauth2(user, token)))
        assert status == "OK"
        assert fetch_all(imap) == [raw]


def test_xoauth2_over_implicit_tls_trusting_ca_file(mail_server: MailServer) -> None:
    user = mail_server.fresh_user()
    raw = message("over tls")
    mail_server.dovecot.deliver(user, raw)
    dovecot = mail_server.dovecot
    with imaplib.IMAP4_SSL(
        dovecot.host, dovecot.imaps_port, ssl_context=trusting(mail_server), timeout=10
    ) as imap:
        status, _ = imap.authenticate(
            "XOAUTH2", answer_once(xoauth2(user, mail_server.token(user)))
        )
        assert status == "OK"
        assert fetch_all(imap) == [raw]
    # the certificate also names localhost
    with imaplib.IMAP4_SSL(
        "localhost", dovecot.imaps_port, ssl_context=trusting(mail_server), timeout=10
    ) as imap:
        assert "AUTH=XOAUTH2" in imap.capabilities


def test_password_login_only_for_accounts_given_one(mail_server: MailServer) -> None:
    """For reference clients without OAuth (the benchmark's fetchmail): a password given with
    set_password signs in (over TLS here); other accounts have none."""
    user, other = mail_server.fresh_user(), mail_server.fresh_user()
    raw = message("by password")
    dovecot = mail_server.dovecot
    dovecot.deliver(user, raw)
    dovecot.set_password(user, "reference-Pass-1")
    context = trusting(mail_server)
    with imaplib.IMAP4_SSL(dovecot.host, dovecot.imaps_port, ssl_context=context) as imap:
        imap.login(user, "reference-Pass-1")
        assert fetch_all(imap) == [raw]
    with (
        imaplib.IMAP4_SSL(dovecot.host, dovecot.imaps_port, ssl_context=context) as imap,
        pytest.raises(imaplib.IMAP4.error),
    ):
        imap.login(other, "reference-Pass-1")


def test_implicit_tls_is_refused_without_trusting_the_certificate(
    mail_server: MailServer,
) -> None:
    dovecot = mail_server.dovecot
    system_trust = ssl.create_default_context()
    with pytest.raises(ssl.SSLCertVerificationError):
        imaplib.IMAP4_SSL(dovecot.host, dovecot.imaps_port, ssl_context=system_trust, timeout=10)


def test_starttls_then_xoauth2(mail_server: MailServer) -> None:
    user = mail_server.fresh_user()
    dovecot = mail_server.dovecot
    with imaplib.IMAP4(dovecot.host, dovecot.imap_port, timeout=10) as imap:
        assert "STARTTLS" in imap.capabilities
        tls_status, _ = imap.starttls(trusting(mail_server))
        assert tls_status == "OK"
        assert isinstance(imap.sock, ssl.SSLSocket)
        status, _ = imap.authenticate(
            "XOAUTH2", answer_once(xoauth2(user, mail_server.token(user)))
        )
        assert status == "OK"


def test_oauthbearer_over_imap(mail_server: MailServer) -> None:
    user = mail_server.fresh_user()
    dovecot = mail_server.dovecot
    with imaplib.IMAP4(dovecot.host, dovecot.imap_port, timeout=10) as imap:
        status, _ = imap.authenticate(
            "OAUTHBEARER", answer_once(oauthbearer(user, mail_server.token(user)))
        )
        assert status == "OK"
        status, _ = imap.select("INBOX")
        assert status == "OK"


@pytest.mark.parametrize(
    "case", ["expired", "unknown", "someone else's", "for Graph", "a bare scope name"]
)
def test_bad_tokens_are_refused_over_imap(mail_server: MailServer, case: str) -> None:
    user = mail_server.fresh_user()
    token = mail_server.token(user)
    if case == "for Graph":  # the user's own, active token, for another resource
        token = mail_server.token(user, scope="https://graph.microsoft.com/Mail.ReadWrite")
    elif case == "a bare scope name":  # Entra reads it as Graph's (oauth-facts §1.8)
        token = mail_server.token(user, scope="IMAP.AccessAsUser.All")
    elif case == "expired":
        mail_server.idp.access_tokens[token].expires_at = int(time.time()) - 1
    elif case == "unknown":
        token = "not-a-token-" + uuid.uuid4().hex
    else:
        token = mail_server.token(BOB)
    dovecot = mail_server.dovecot
    with imaplib.IMAP4(dovecot.host, dovecot.imap_port, timeout=10) as imap:
        with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
            imap.authenticate("XOAUTH2", answer_once(xoauth2(user, token)))
        with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
            imap.authenticate(
                "OAUTHBEARER", answer_once(oauthbearer(user, token), on_error=b"\x01")
            )


def test_the_error_challenge_is_the_json_of_rfc_7628(mail_server: MailServer) -> None:
    user = mail_server.fresh_user()
    seen: list[bytes] = []

    def respond(challenge: bytes) -> bytes:
        seen.append(challenge)
        return xoauth2(user, "expired-or-unknown") if len(seen) == 1 else b""

    dovecot = mail_server.dovecot
    with (
        imaplib.IMAP4(dovecot.host, dovecot.imap_port, timeout=10) as imap,
        pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"),
    ):
        imap.authenticate("XOAUTH2", respond)
    assert len(seen) == 2
    assert b'"status":"401"' in seen[1]


# --- POP3 -----------------------------------------------------------------------------


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "implicit-tls"])
def test_pop3_auth_xoauth2_with_continuation(mail_server: MailServer, tls: bool) -> None:
    user = mail_server.fresh_user()
    raws = [message("pop 1"), message("pop 2")]
    mail_server.dovecot.deliver_many(user, raws)
    with pop3(mail_server, tls=tls) as client:
        capabilities = client.capa()
        assert "XOAUTH2" in capabilities["SASL"]
        answer = pop3_auth(client, "XOAUTH2", xoauth2(user, mail_server.token(user)))
        assert answer.startswith(b"+OK")
        assert client.stat()[0] == 2
        retrieved = [b"\r\n".join(client.retr(n)[1]) + b"\r\n" for n in (1, 2)]
        assert retrieved == raws
        uidls = [line.split()[1].decode() for line in client.uidl()[1]]
    validity = mail_server.dovecot.mailbox_status(user)["uidvalidity"]
    assert uidls == [f"{uid:08x}{validity:08x}" for uid in (1, 2)]  # %08Xu%08Xv


def test_pop3_stls_then_oauthbearer(mail_server: MailServer) -> None:
    user = mail_server.fresh_user()
    with pop3(mail_server) as client:
        client.stls(trusting(mail_server))
        answer = pop3_auth(client, "OAUTHBEARER", oauthbearer(user, mail_server.token(user)))
        assert answer.startswith(b"+OK")


@pytest.mark.parametrize("case", ["expired", "for Graph"])
def test_pop3_refuses_an_expired_token_or_one_for_graph(mail_server: MailServer, case: str) -> None:
    user = mail_server.fresh_user()
    token = mail_server.token(user)
    if case == "expired":
        mail_server.idp.access_tokens[token].expires_at = int(time.time()) - 1
    else:
        token = mail_server.token(user, scope="https://graph.microsoft.com/Mail.ReadWrite")
    with (
        pop3(mail_server) as client,
        pytest.raises(poplib.error_proto, match=r"-ERR \[AUTH\] Authentication failed"),
    ):
        pop3_auth(client, "XOAUTH2", xoauth2(user, token))


def test_pop3_delete_removes_the_file(mail_server: MailServer) -> None:
    user = mail_server.fresh_user()
    mail_server.dovecot.deliver_many(user, [message("keep"), message("drop")])
    with pop3(mail_server) as client:
        pop3_auth(client, "XOAUTH2", xoauth2(user, mail_server.token(user)))
        client.dele(2)
    remaining = mail_server.dovecot.messages(user)
    assert len(remaining) == 1
    assert b"Subject: keep" in remaining[0]


# --- the shared mailbox ---------------------------------------------------------------


def imap_login(mail_server: MailServer, user: str, token: str) -> list[bytes] | None:
    """The INBOX of ``user`` opened with ``token``, or None when the login fails."""
    dovecot = mail_server.dovecot
    with imaplib.IMAP4(dovecot.host, dovecot.imap_port, timeout=10) as imap:
        try:
            imap.authenticate("XOAUTH2", answer_once(xoauth2(user, token)))
        except imaplib.IMAP4.error as exc:
            if "AUTHENTICATIONFAILED" not in str(exc):
                raise
            return None
        return fetch_all(imap)


def test_shared_mailbox_opens_with_a_delegates_token_only_once_delegated(
    mail_server: MailServer,
) -> None:
    shared = f"shared-{uuid.uuid4().hex[:8]}@{DOMAIN}"
    raw = message("to the shared mailbox")
    mail_server.dovecot.deliver(shared, raw)
    alice, bob = mail_server.token(ALICE), mail_server.token(BOB)

    assert imap_login(mail_server, shared, alice) is None  # not (yet) a delegate
    mail_server.dovecot.add_delegate(ALICE, shared)
    assert imap_login(mail_server, shared, alice) == [raw]
    assert imap_login(mail_server, shared, bob) is None  # bob is not
    assert imap_login(mail_server, shared.upper(), alice) == [raw]  # case does not matter

    mail_server.idp.access_tokens[alice].expires_at = int(time.time()) - 1
    assert imap_login(mail_server, shared, alice) is None  # expired
    mail_server.dovecot.remove_delegate(ALICE, shared)
    assert imap_login(mail_server, shared, mail_server.token(ALICE)) is None


def test_shared_mailbox_over_pop3(mail_server: MailServer) -> None:
    shared = f"shared-{uuid.uuid4().hex[:8]}@{DOMAIN}"
    mail_server.dovecot.deliver(shared, message("pop shared"))
    mail_server.dovecot.add_delegate(BOB, shared)
    with pop3(mail_server) as client:
        pop3_auth(client, "XOAUTH2", xoauth2(shared, mail_server.token(BOB)))
        assert client.stat()[0] == 1


def test_app_only_token_opens_mailboxes_the_app_was_granted(mail_server: MailServer) -> None:
    shared = f"shared-{uuid.uuid4().hex[:8]}@{DOMAIN}"
    raw = message("for the daemon")
    mail_server.dovecot.deliver(shared, raw)
    token = mail_server.app_token()
    assert imap_login(mail_server, shared, token) is None
    mail_server.dovecot.add_delegate(DAEMON_APP, shared)
    assert imap_login(mail_server, shared, token) == [raw]
    assert imap_login(mail_server, ALICE, token) is None


# --- the mail files -------------------------------------------------------------------


def test_folders_flags_and_files_agree_with_imap(mail_server: MailServer) -> None:
    user = mail_server.fresh_user()
    dovecot = mail_server.dovecot
    dovecot.deliver(user, message("old"), folder="Processed", seen=True)
    dovecot.create_folder(user, "Archive/2026")
    raw = message("new")
    dovecot.deliver(user, raw)
    with imaplib.IMAP4(dovecot.host, dovecot.imap_port, timeout=10) as imap:
        imap.authenticate("XOAUTH2", answer_once(xoauth2(user, mail_server.token(user))))
        status, listing = imap.list()
        assert status == "OK"
        names = {
            line.decode().rsplit(" ", 1)[-1].strip('"')
            for line in listing
            if isinstance(line, bytes)
        }
        assert {"INBOX", "Processed", "Archive/2026"} <= names
        imap.select("Processed")
        status, data = imap.fetch("1", "(FLAGS)")
        assert b"\\Seen" in data[0]  # type: ignore[operator]
        assert dovecot.flags(user, "Processed") == [{"\\Seen"}]
        imap.select("INBOX")
        imap.store("1", "+FLAGS", "(\\Flagged)")
        status, _ = imap.copy("1", "Archive/2026")
        assert status == "OK"
        imap.close()
    assert dovecot.flags(user) == [{"\\Flagged"}]
    assert dovecot.messages(user, "Archive/2026") == [raw]
    assert dovecot.mailbox_status(user)["messages"] == 1


def test_deliver_many_is_fast_for_thousands(mail_server: MailServer) -> None:
    user = mail_server.fresh_user()
    raws = [message(f"bulk {n}") for n in range(3000)]
    started = time.monotonic()
    assert mail_server.dovecot.deliver_many(user, raws) == 3000
    assert time.monotonic() - started < 5
    assert mail_server.dovecot.mailbox_status(user)["messages"] == 3000
    assert mail_server.dovecot.messages(user) == raws  # read back in Dovecot's order
