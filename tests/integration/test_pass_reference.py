"""The pipelined pass (batches fetched ahead, overlapping deliveries, the writer processes)
against the plain sequential one (engine.pipeline.sequential: one message fetched,
delivered, recorded and acknowledged at a time), over the same mailbox on a real Dovecot:
the same files in the output, the same import records, the same state on the server."""

from __future__ import annotations

import email.policy
import json
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from mailintake.engine.batches import BATCH
from mailintake.engine.pipeline import Importer, pipelined, sequential
from mailintake.engine.poll import Poller
from mailintake.services.apply import apply_document
from mailintake.store.repo import Store
from mailintake.store.tables import imports
from tests.support.dovecot import DAEMON_APP, MailServer
from tests.support.malformed import malformed
from tests.support.oauth import microsoft_at

pytestmark = pytest.mark.both_databases
LIMIT = 20_000  # max_message_size: one message of the mailbox is over it


def messages() -> list[bytes]:
    """More than a batch: small ones with attachments, malformed ones, one too large."""
    found: list[bytes] = []
    for n in range(BATCH + 30):
        msg = EmailMessage()
        msg["From"] = f"Supplier {n % 7} <billing{n % 7}@supplier.example>"
        msg["To"] = "intake@contoso.example"
        msg["Subject"] = f"Invoice {n}"
        msg["Message-ID"] = f"<reference-{n}@supplier.example>"
        msg["Date"] = "Tue, 24 Nov 2026 09:00:00 +0000"
        msg.set_content(f"invoice {n}\r\n")
        msg.add_attachment(
            b"%PDF-1.7 " + bytes([n % 251]) * (50 + n),
            maintype="application",
            subtype="pdf",
            filename=f"invoice {n}.pdf",
        )
        found.append(msg.as_bytes(policy=email.policy.SMTP))
    found.extend(malformed().values())
    found.insert(40, b"Subject: scan\r\nMessage-ID: <big@scan.example>\r\n\r\n" + b"x" * LIMIT)
    return found


def records(store: Store, mailbox: str) -> list[tuple[Any, ...]]:
    """Every import record of the mailbox, and what the output holds at its place, as they
    can be compared between two mailboxes (whose folders differ in UIDVALIDITY only)."""
    with store.read() as repo:
        rows = repo.conn.execute(
            select(
                imports.c.key,
                imports.c.status,
                imports.c.source,
                imports.c.location,
                imports.c.subject,
                imports.c.sender,
                imports.c.size,
                imports.c.sha256,
                imports.c.message_id,
                imports.c.error,
                imports.c.attempts,
            )
            .where(imports.c.mailbox == mailbox)
            .order_by(imports.c.source["uid"].as_integer())
        ).all()
    validity = str(rows[0].source["uidvalidity"])
    found = []
    for row in rows:
        source = {**row.source, "uidvalidity": "V"}
        place = placed(Path(row.location)) if row.location else None
        location = None
        if row.location:
            location = row.location.replace(validity, "V").replace(f"/{mailbox}/", "/M/")
        found.append((row.key.replace(validity, "V"), row.status, source, location, place))
        found.append(tuple(row[4:]))
    return found


def placed(folder: Path) -> tuple[bytes, dict[str, Any]]:
    """A message as the output wrote it, and its metadata (but for where it came from)."""
    meta = json.loads((folder / "metadata.json").read_text())
    for mailbox_specific in ("mailbox", "key", "source", "imported_at"):
        meta.pop(mailbox_specific, None)
    meta["files"] = sorted(
        (str(p.relative_to(folder)), p.read_bytes().hex())
        for p in folder.rglob("*")
        if p.is_file() and p.name not in ("message.eml", "metadata.json")
    )
    return (folder / "message.eml").read_bytes(), meta


def test_pipelined_and_sequential_passes_leave_the_same_results(
    store: Store, home: Path, tmp_path: Path, mail_server: MailServer
) -> None:
    server, dovecot = mail_server, mail_server.dovecot
    mail = messages()
    importers: dict[str, Importer] = {"piped": pipelined, "one-by-one": sequential}
    users: dict[str, str] = {}
    for name in importers:
        users[name] = server.fresh_user(name)
        dovecot.add_delegate(DAEMON_APP, users[name])
        dovecot.deliver_many(users[name], mail)  # the same messages, the same UIDs
    out = tmp_path / "out"
    apply_document(
        store,
        {
            "outputs": [{"name": "capture", "type": "folder", "path": str(out)}],
            "mailboxes": [
                {
                    "name": name,
                    "protocol": "imap",
                    "host": dovecot.host,
                    "port": dovecot.imap_port,
                    "security": "none",
                    "username": user,
                    "output": "capture",
                    "max_message_size": LIMIT,
                    "oauth": server.app_grant(),
                }
                for name, user in users.items()
            ],
            "authorization_servers": [microsoft_at(server.idp.base_url)],
        },
        {},
    )

    results = {}
    for name, importer in importers.items():
        poller = Poller(store, home, importer=importer)
        results[name] = [poller.poll(name).as_dict(), poller.poll(name).as_dict()]

    large = sum(1 for raw in mail if len(raw) > LIMIT)  # they stay on the server
    assert large >= 1
    first, again = results["piped"]
    assert first["error"] is None, first
    assert (first["imported"], first["failed"]) == (len(mail) - large, large)
    assert again["imported"] == 0
    for result in results["one-by-one"]:
        result["mailbox"] = "piped"
    assert results["one-by-one"] == results["piped"]
    assert records(store, "one-by-one") == records(store, "piped")
    assert len(list(out.rglob("message.eml"))) == 2 * (len(mail) - large)
    seen = {
        name: ["\\Seen" in flags for flags in dovecot.flags(user)] for name, user in users.items()
    }
    assert seen["one-by-one"] == seen["piped"]
    assert seen["piped"].count(False) == large  # left unread on the server
