"""A real IMAP and POP3 server for tests and ``make demo``: Debian's Dovecot 2.3, run as an
ordinary process on free loopback ports, validating OAuth 2.0 bearer tokens by RFC 7662
introspection against the sandbox identity provider::

    idp = build_mail_idp()                     # open introspection, ALICE, BOB, SHARED
    with idp.serve() as base, start_dovecot(folder, f"{base}/introspect") as dovecot:
        dovecot.deliver(ALICE, b"Subject: hi\\r\\n\\r\\nbody\\r\\n")
        dovecot.add_delegate(DAEMON_APP, SHARED)   # app-only access to a shared mailbox

Logins (Exchange Online's rules, mirrored):

- a token whose introspection ``username`` equals the login name opens that mailbox;
- a token with ``user=`` another address opens it when the token's owner (its ``sub``: the
  user's address, or the app's client id for an app-only token) was made a delegate of it with
  ``add_delegate(owner, shared)`` (Exchange's Add-MailboxPermission); otherwise it fails.
  Each grant is a one-line passwd-file ``delegations/OWNER/SHARED`` (reference: a file per
  owner; one per pair here, because Dovecot rereads a changed passwd-file at most once a
  second, while a new file is read at once).

Like Exchange Online, Dovecot refuses a token that is not for the mail resource with nothing
but "authentication failed": it names itself to the introspection endpoint
(``?resource=https://outlook.office.com``), which answers active=false for a token for another
resource (a Graph token) or without an IMAP/POP scope (or, app-only, an IMAP/POP role). Mail
lives in Maildir++ folders (``.Processed``), owned by a
system user ``vmail`` (made when missing; as non-root, the current user), and the caller reads
and writes the files directly with ``deliver``, ``messages`` and ``flags``.

Modules: ``launch`` (configuration and process), ``server`` (the running server and its mail
files), ``accounts`` (the identity provider's users and apps).
"""

from sandbox.dovecot.accounts import (
    ALICE,
    BOB,
    DAEMON_APP,
    DAEMON_SECRET,
    DOMAIN,
    MAIL_APP,
    OUTLOOK_APP_SCOPE,
    OUTLOOK_SCOPES,
    PASSWORDS,
    SHARED,
    USER_PASSWORD,
    build_mail_idp,
)
from sandbox.dovecot.launch import (
    MAIL_USER,
    DovecotMissing,
    dovecot_installed,
    start_dovecot,
)
from sandbox.dovecot.server import Dovecot

__all__ = [
    "ALICE",
    "BOB",
    "DAEMON_APP",
    "DAEMON_SECRET",
    "DOMAIN",
    "MAIL_APP",
    "MAIL_USER",
    "OUTLOOK_APP_SCOPE",
    "OUTLOOK_SCOPES",
    "PASSWORDS",
    "SHARED",
    "USER_PASSWORD",
    "Dovecot",
    "DovecotMissing",
    "build_mail_idp",
    "dovecot_installed",
    "start_dovecot",
]
