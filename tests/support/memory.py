"""Imports from the memory source (mailintake.sources.memory) into a real folder output: the
invoices a mailbox holds (``message``, ``filled``), a mailbox of the configuration delivering
to the folder "capture" (``mailbox``, ``setup``), a Poller reading a MemoryMailbox
(``poller``), what the output holds (``dirs``), and a source whose after-import action fails
(``FailingAcknowledge``). The ``box`` fixture (tests/integration/conftest.py) is a mailbox of
three invoices with a PDF each."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from mailintake.engine.poll import Poller
from mailintake.errors import SourceError
from mailintake.services.apply import apply_document
from mailintake.sources.base import MailSource
from mailintake.sources.memory import MemoryMailbox, MemorySource
from mailintake.store.repo import Store

RECEIVED = datetime(2026, 11, 23, 10, tzinfo=UTC)  # the date of every ``message``


def message(n: int, attachment: bytes | None = None) -> bytes:
    """Invoice ``n`` (Message-ID ``<invoice-n@supplier.example>``), with a PDF attached when
    ``attachment`` is given, under a file name that tries to leave its folder."""
    msg = EmailMessage()
    msg["From"] = "Supplier <billing@supplier.example>"
    msg["To"] = "invoices@contoso.com"
    msg["Subject"] = f"Invoice {n}"
    msg["Message-ID"] = f"<invoice-{n}@supplier.example>"
    msg["Date"] = "Mon, 23 Nov 2026 10:00:00 +0000"
    msg.set_content(f"Invoice number {n}\n")
    if attachment is not None:
        msg.add_attachment(
            attachment, maintype="application", subtype="pdf", filename=f"../../invoice {n}.pdf"
        )
    return msg.as_bytes()


def filled(messages: dict[int, bytes]) -> MemoryMailbox:
    """A mailbox holding ``messages`` under these UIDs, all received at RECEIVED."""
    return MemoryMailbox(messages, received=RECEIVED)


def mailbox(name: str) -> dict[str, Any]:
    """An IMAP mailbox signed in with an authorization code, delivering to "capture"."""
    return {
        "name": name,
        "protocol": "imap",
        "username": f"{name}@contoso.com",
        "output": "capture",
        "oauth": {
            "authorization_server": "MICROSOFT",
            "grant_type": "authorization_code",
            "tenant_id": "contoso.onmicrosoft.com",
            "client_id": "app",
            "redirect_uri": "http://localhost/",
        },
    }


def setup(store: Store, out: Path) -> None:
    """The mailbox "invoices", delivering to the folder output "capture" at ``out``."""
    configure(store, {"type": "folder", "path": str(out)})


def configure(store: Store, output: dict[str, Any]) -> None:
    """The mailbox "invoices", delivering to the output "capture" given by ``output``."""
    apply_document(
        store,
        {"outputs": [{"name": "capture", **output}], "mailboxes": [mailbox("invoices")]},
        {},
    )


def poller(
    store: Store,
    home: Path,
    box: MemoryMailbox,
    source: Callable[[MemoryMailbox], MailSource] = MemorySource,
    **kwargs: Any,
) -> Poller:
    """A Poller whose every mailbox reads ``box`` (through ``source``)."""

    def factory(*_args: Any, **_options: Any) -> MailSource:
        return source(box)

    return Poller(store, home, source_factory=factory, **kwargs)


def dirs(out: Path) -> list[Path]:
    """The folders of the messages the output ``out`` holds for "invoices", in order."""
    return sorted(p for p in out.glob("invoices/*/*") if p.is_dir())


class FailingAcknowledge(MemorySource):
    """Loses the connection during every after-import action: a crash before the
    acknowledgement."""

    def acknowledge(self, sources: Sequence[dict[str, Any]]) -> None:
        raise SourceError("connection lost during the after-import action")
