"""The set-up mistakes of an IMAP or POP3 mailbox, against a real Dovecot: each one's
failure names the setting to check (host, port, security) instead of a bare socket error."""

from __future__ import annotations

import pytest

from mailintake.errors import NetworkError
from mailintake.sources.imap import ImapSettings, ImapSource
from mailintake.sources.pop3 import Pop3Settings, Pop3Source
from sandbox.ports import free_port
from tests.support.dovecot import MailServer

TIMEOUT = 2.0  # a connection that gets no answer fails after this long
# ... and where the server never answers (a plain greeting awaited on a TLS port), the test
# waits this long instead: nothing comes, however long.
SILENT = 0.5


def source(
    protocol: str, host: str, port: int, security: str, timeout: float = TIMEOUT
) -> ImapSource | Pop3Source:
    user = "nobody@contoso.onmicrosoft.com"
    if protocol == "imap":
        return ImapSource(
            ImapSettings(host, port, security, user, user, "INBOX", "keep", None, timeout=timeout),
            lambda: "unused",
            "box",
        )
    return Pop3Source(
        Pop3Settings(host, port, security, user, user, "keep", timeout=timeout),
        lambda: "unused",
        "box",
    )


def failure(protocol: str, host: str, port: int, security: str, timeout: float = TIMEOUT) -> str:
    with pytest.raises(NetworkError) as caught:
        source(protocol, host, port, security, timeout).open()
    message = str(caught.value)
    assert message.startswith(f"box: {protocol.upper()} {host}:{port}: cannot connect: ")
    return message


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_each_mistake_names_the_setting_to_check(
    mail_server: MailServer, protocol: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(mail_server.dovecot.ca_file))
    dovecot = mail_server.dovecot
    plain, with_tls = (
        (dovecot.imap_port, dovecot.imaps_port)
        if protocol == "imap"
        else (dovecot.pop3_port, dovecot.pop3s_port)
    )
    usual_tls, usual_plain = (993, 143) if protocol == "imap" else (995, 110)

    tls_on_plain = failure(protocol, dovecot.host, plain, "ssl")
    assert "the server did not answer with TLS" in tls_on_plain
    assert f"security starttls or none, usually port {usual_plain}" in tls_on_plain
    assert tls_on_plain.endswith("check port and security")

    for security in ("none", "starttls"):
        plain_on_tls = failure(protocol, dovecot.host, with_tls, security, SILENT)
        assert f"no answer within {SILENT:g} s" in plain_on_tls
        assert f"security ssl, usually port {usual_tls}" in plain_on_tls
        assert plain_on_tls.endswith("check port, security and the firewall")

    closed = free_port()
    refused = failure(protocol, dovecot.host, closed, "ssl")
    assert refused.endswith(
        f"connection refused: nothing listens on port {closed} of {dovecot.host}: "
        "check host and port"
    )

    unknown = failure(protocol, "mail.mailintake.invalid", usual_tls, "ssl")
    assert "the host name mail.mailintake.invalid could not be resolved" in unknown
    assert unknown.endswith("check host")


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_an_untrusted_certificate_after_starttls(
    mail_server: MailServer, protocol: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    dovecot = mail_server.dovecot
    port = dovecot.imap_port if protocol == "imap" else dovecot.pop3_port
    message = failure(protocol, dovecot.host, port, "starttls")
    assert "the server's TLS certificate could not be verified" in message
    assert "SSL_CERT_FILE" in message


def test_the_right_settings_connect(
    mail_server: MailServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same sources with the right port and security get as far as signing in."""
    monkeypatch.setenv("SSL_CERT_FILE", str(mail_server.dovecot.ca_file))
    dovecot = mail_server.dovecot
    for protocol, port, security in (
        ("imap", dovecot.imaps_port, "ssl"),
        ("imap", dovecot.imap_port, "starttls"),
        ("pop3", dovecot.pop3s_port, "ssl"),
        ("pop3", dovecot.pop3_port, "starttls"),
    ):
        opening = source(protocol, dovecot.host, port, security)
        try:
            with pytest.raises(Exception) as caught:  # noqa: PT011 - any refusal of the token
                opening.open()
        finally:
            opening.close()
        assert "cannot connect" not in str(caught.value), (protocol, security)
