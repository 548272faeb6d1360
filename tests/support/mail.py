"""Mail on the shared Dovecot (``mail_server``): messages as a server serves them (``raw``),
a mailbox delivering to a folder output (``configure``, then ``sign_in`` for a user grant;
both at once: ``dovecot_mailbox``; read by the application: ``app_user``, ``app_mailbox``),
what that output holds (``imported``), the sources on their own (``imap_source``,
``pop3_source``), and message files Dovecot can no longer read (``poison``, ``cure``)."""

from __future__ import annotations

import base64
import email.policy
import functools
import uuid
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from mailintake.oauth.authorize import Interaction, authorize
from mailintake.oauth.tokens import TokenManager
from mailintake.services.apply import apply_document
from mailintake.sources.imap import ImapSettings, ImapSource
from mailintake.sources.pop3 import Pop3Settings, Pop3Source
from mailintake.store.repo import Store
from sandbox.dovecot import Dovecot
from tests.support.dovecot import DAEMON_APP, MailServer
from tests.support.oauth import Browser, microsoft_at


def raw(n: int) -> bytes:
    """Order ``n`` with a PDF attached, its Message-ID unique to this call: what ``built``
    makes, from its bytes for one order with ``n`` put in (the standard library takes
    milliseconds a message, and tests make thousands); the MIME boundary is the same in
    every message."""
    return order(n, uuid.uuid4().hex[:6])


def built(n: int, tag: str) -> bytes:
    """Order ``n`` as the standard library writes it, Message-ID ``<order-N-TAG@…>``."""
    msg = EmailMessage()
    msg["From"] = "orders@shop.example"
    msg["To"] = "intake@contoso.example"
    msg["Subject"] = f"Order {n}"
    msg["Message-ID"] = f"<order-{n}-{tag}@shop.example>"
    msg["Date"] = "Tue, 24 Nov 2026 09:00:00 +0000"
    msg.set_content(f"order {n}\r\n")
    msg.add_attachment(_pdf(n), maintype="application", subtype="pdf", filename=f"order-{n}.pdf")
    return msg.as_bytes(policy=email.policy.SMTP)  # as a server serves it: CRLF


def order(n: int, tag: str) -> bytes:
    """``built(n, tag)`` but for its MIME boundary, without the standard library's cost."""
    number = str(n).encode()
    if len(number) > len(_NUMBER):  # longer lines than the standard library keeps whole
        return built(n, tag)
    head, tail = _order_pieces()
    return b"".join(
        (
            head.replace(_NUMBER, number).replace(_TAG, tag.encode()),
            base64.b64encode(_pdf(n)),
            tail.replace(_NUMBER, number),
        )
    )


_NUMBER, _TAG = b"8642097531", b"TAGTAG"


def _pdf(n: int) -> bytes:
    return b"%PDF-1.7 order " + str(n).encode()


@functools.cache
def _order_pieces() -> tuple[bytes, bytes]:
    """One order made by ``built``, cut around its attachment's base64 (one line)."""
    whole = built(int(_NUMBER), _TAG.decode())
    head, found, tail = whole.partition(b"\r\n" + base64.b64encode(_pdf(int(_NUMBER))) + b"\r\n")
    assert found, "the attachment is one base64 line"
    assert head.count(_NUMBER) == 4, "the number only in Subject, Message-ID, text, file name"
    return head + b"\r\n", b"\r\n" + tail


def imported(out: Path, name: str) -> set[bytes]:
    """The messages the folder output ``out`` holds for the mailbox ``name``."""
    return {p.read_bytes() for p in out.glob(f"{name}/*/*/message.eml")}


def configure(store: Store, server: MailServer, out: Path, box: dict[str, Any]) -> None:
    """The mailbox ``box`` on the shared Dovecot (no TLS), delivering to the folder ``out``."""
    apply_document(
        store,
        {
            "authorization_servers": [microsoft_at(server.idp.base_url)],
            "outputs": [{"name": "capture", "type": "folder", "path": str(out)}],
            "mailboxes": [
                {"host": server.dovecot.host, "security": "none", "output": "capture", **box}
            ],
        },
        {},
    )


def dovecot_mailbox(
    store: Store,
    server: MailServer,
    out: Path,
    name: str,
    user: str,
    protocol: str = "imap",
    after_import: str | None = None,
    **fields: Any,
) -> None:
    """The mailbox ``name``: ``user``'s on the shared Dovecot over ``protocol``, delivering
    to the folder ``out``, signed in with the user's grant; ``fields`` adds or changes its
    fields."""
    port = server.dovecot.imap_port if protocol == "imap" else server.dovecot.pop3_port
    box = {"name": name, "protocol": protocol, "port": port, "username": user}
    if after_import is not None:  # else the protocol's default (IMAP mark_read, POP3 keep)
        box["after_import"] = after_import
    box |= {"oauth": server.user_grant(), **fields}
    configure(store, server, out, box)
    sign_in(store, name, user, server)


def app_user(server: MailServer, prefix: str, messages: list[bytes]) -> str:
    """A new user whose mailbox holds ``messages``, DAEMON_APP a delegate of it (as
    Add-MailboxPermission makes the application); returns the address."""
    user = server.fresh_user(prefix)
    server.dovecot.add_delegate(DAEMON_APP, user)
    server.dovecot.deliver_many(user, messages)
    return user


def app_mailbox(
    server: MailServer, name: str, user: str, protocol: str = "imap", **fields: Any
) -> dict[str, Any]:
    """The mailbox ``name`` of ``user`` on the shared Dovecot over ``protocol``, read with
    DAEMON_APP's token (client credentials); ``fields`` adds or changes its fields."""
    port = server.dovecot.imap_port if protocol == "imap" else server.dovecot.pop3_port
    box = {"name": name, "protocol": protocol, "port": port, "username": user}
    return {**box, "oauth": server.app_grant(), **fields}


def sign_in(store: Store, name: str, user: str, server: MailServer) -> None:
    """The mailbox's user grant, signed in through the identity provider's pages."""
    browser = Browser(user, server.passwords[user])
    authorize(
        TokenManager(store),
        name,
        Interaction(show=lambda _t: None, open_url=browser.sign_in, ask=lambda _p: "", timeout=30),
    )


def _session(server: MailServer, user: str, protocol: str, tls: bool) -> dict[str, Any]:
    """Where and as whom a source of ``protocol`` signs in on the shared Dovecot."""
    dovecot = server.dovecot
    plain, implicit = {
        "imap": (dovecot.imap_port, dovecot.imaps_port),
        "pop3": (dovecot.pop3_port, dovecot.pop3s_port),
    }[protocol]
    return {
        "host": dovecot.host,
        "port": implicit if tls else plain,
        "security": "ssl" if tls else "none",
        "username": user,
        "login_as": user,
    }


def imap_source(
    server: MailServer,
    user: str,
    after_import: str = "keep",
    *,
    tls: bool = False,
    folder: str = "INBOX",
    move_to: str | None = None,
) -> ImapSource:
    """The IMAP source itself, signed in as ``user`` on the shared Dovecot."""
    settings = ImapSettings(
        **_session(server, user, "imap", tls),
        folder=folder,
        after_import=after_import,
        move_to=move_to,
    )
    return ImapSource(settings, lambda: server.token(user), "box")


def pop3_source(
    server: MailServer,
    user: str,
    after_import: str = "keep",
    *,
    tls: bool = False,
    batch: int = 200,
) -> Pop3Source:
    """The POP3 source itself, signed in as ``user`` on the shared Dovecot."""
    settings = Pop3Settings(
        **_session(server, user, "pop3", tls), after_import=after_import, batch=batch
    )
    return Pop3Source(settings, lambda: server.token(user), "box")


def message_file(dovecot: Dovecot, user: str, message: bytes) -> Path:
    box = dovecot.maildir(user)
    for sub in ("new", "cur"):
        for path in (box / sub).iterdir():
            if path.read_bytes() == message:  # root reads it whatever its mode
                return path
    raise AssertionError("no such message file")


def poison(dovecot: Dovecot, user: str, message: bytes) -> None:
    """Dovecot's mail processes (the mail user, not root) can no longer read it. Its name
    is given the size with CRLF line endings (``W=``) too, as Dovecot's own deliveries do:
    POP3 lists sizes when the session begins and would otherwise read every file for them
    (then no session begins at all: nothing a client can narrow down)."""
    path = message_file(dovecot, user, message)
    path.chmod(0)
    path.rename(path.with_name(path.name.replace(",S=", f",W={len(message)},S=")))


def cure(dovecot: Dovecot, user: str, message: bytes) -> None:
    message_file(dovecot, user, message).chmod(0o600)
