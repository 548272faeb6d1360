"""What the demo prints once everything runs: where each part listens, who can sign in, and
the commands to try next."""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path

from sandbox.demo.tenant import (
    ALICE,
    CLAIMS,
    DAEMON_APP,
    DAEMON_SECRET,
    GRAPH_BOX,
    IMAP_BOX,
    ORDERS,
    OUTPUT,
    PASSWORDS,
    POP3_BOX,
    TENANT,
)
from sandbox.dovecot import Dovecot

READY = "mailintake demo is ready"


@dataclass(frozen=True)
class Running:
    home: Path
    config: Path
    web_url: str
    admin_password: str
    idp_url: str
    graph_url: str
    dovecot: Dovecot
    counts: dict[str, int]
    bin_dir: Path


def next_steps(running: Running) -> list[str]:
    """The shell lines a newcomer types in a second terminal."""
    lines = [
        f'export PATH={shlex.quote(str(running.bin_dir))}:"$PATH"',
        f"export MAILINTAKE_HOME={shlex.quote(str(running.home))}",
    ]
    moved = [n for n in ("MAILINTAKE_DATABASE_URL", "MAILINTAKE_SECRET_KEY") if n in os.environ]
    if moved:
        lines.append("unset " + " ".join(moved))
    return [
        *lines,
        'cd "$MAILINTAKE_HOME"',
        f"mailintake validate {running.config.name}",
        f"mailintake apply {running.config.name}",
        f"mailintake authorize {IMAP_BOX}",
        "mailintake poll --all",
        "mailintake status",
    ]


def banner(running: Running) -> str:
    d = running.dovecot
    users = "\n".join(f"    {user:<34} {password}" for user, password in PASSWORDS.items())
    steps = "\n".join(f"    {line}" for line in next_steps(running))
    return f"""
{READY}.

  web admin          {running.web_url}   password: {running.admin_password}
  identity provider  {running.idp_url}   (Entra ID stand-in, tenant {TENANT})
  Graph emulator     {running.graph_url}
  Dovecot            IMAP {d.host}:{d.imap_port}, POP3 {d.host}:{d.pop3_port}
  demo home          {running.home}
                     ({running.config.name}, the database, imported mail in {OUTPUT}/)

  Sign-in page users (the identity provider's login page):
{users}
  App-only app: client id {DAEMON_APP}, secret {DAEMON_SECRET}

  Mailboxes in {running.config.name} (already applied):
    {IMAP_BOX:<13} IMAP, {ALICE}'s inbox, {running.counts[IMAP_BOX]} messages;
                  authorization code: Alice signs in once with mailintake authorize
    {POP3_BOX:<13} POP3, the shared mailbox {ORDERS}, {running.counts[POP3_BOX]} messages;
                  app-only (client credentials): no sign-in
    {GRAPH_BOX:<13} Microsoft Graph, the shared mailbox {CLAIMS},
                  {running.counts[GRAPH_BOX]} messages; app-only (client credentials)
  The server polls every mailbox that can sign in by itself once a minute, so the
  app-only ones are imported already; {IMAP_BOX} waits for its sign-in.

  Try next, in another terminal:
{steps}

  authorize prints the sign-in URL and opens it in a browser (--no-browser: only
  print it); sign in as {ALICE} with the password above.
  Then open the web admin at {running.web_url} and sign in with its password above.

  Stop everything with Ctrl-C.
"""
