"""Mixed business mail for the demo mailboxes: short notes, HTML with a plain-text part, PDF
and spreadsheet attachments, a forwarded message, non-ASCII names and subjects, a Latin-1 body
and one larger scan. Made the same way every time (a seeded generator)."""

from __future__ import annotations

import email.policy
import random
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime

SENDERS = (
    ("Fabrikam Billing", "billing@fabrikam.example"),
    ("Jürgen Müller", "j.mueller@lieferant.example"),
    ("Northwind Orders", "orders@northwind.example"),
    ("Zoë Ærenfeldt", "zoe@tailspin.example"),
    ("Claims Desk", "claims@woodgrove-insurance.example"),
)
KINDS = ("note", "html", "pdf", "forward", "latin1", "spreadsheet", "scan")
START = datetime(2026, 11, 2, 8, 30, tzinfo=UTC)


def _base(n: int, to: str, subject: str, rng: random.Random) -> EmailMessage:
    name, address = SENDERS[n % len(SENDERS)]
    msg = EmailMessage()
    msg["From"] = f"{name} <{address}>"
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(START + timedelta(hours=n * 7, minutes=rng.randint(0, 59)))
    msg["Message-ID"] = f"<demo-{n}-{rng.randrange(16**8):08x}@{address.split('@')[1]}>"
    return msg


def _pdf(label: str, rng: random.Random, size: int = 4_000) -> bytes:
    return b"%PDF-1.4\n% " + label.encode() + b"\n" + rng.randbytes(size) + b"\n%%EOF\n"


def make_message(n: int, to: str, rng: random.Random) -> bytes:
    """Message ``n`` of the demo corpus, addressed to ``to``; the kind rotates with ``n``."""
    kind = KINDS[n % len(KINDS)]
    number = 4100 + n
    if kind == "note":
        msg = _base(n, to, f"Delivery note {number}", rng)
        msg.set_content(f"Goods for order {number} leave our warehouse today.\n")
    elif kind == "html":
        msg = _base(n, to, f"Your order {number} is confirmed", rng)
        text = f"Thank you for order {number}.\nTotal: {rng.randint(90, 9000)}.00 EUR\n"
        msg.set_content(text)
        msg.add_alternative(
            f"<html><body><h1>Order {number}</h1><p>{text}</p></body></html>", subtype="html"
        )
    elif kind == "pdf":
        msg = _base(n, to, f"Invoice {number}", rng)
        msg.set_content(f"Dear customer,\nplease find invoice {number} attached.\n")
        msg.add_attachment(
            _pdf(f"invoice {number}", rng),
            maintype="application",
            subtype="pdf",
            filename=f"invoice-{number}.pdf",
        )
    elif kind == "forward":
        inner = _base(n + 1000, to, f"Claim {number}: water damage", rng)
        inner.set_content("Photos and the repair estimate follow.\n")
        msg = _base(n, to, f"Fwd: Claim {number}: water damage", rng)
        msg.set_content("Forwarding for processing.\n")
        msg.add_attachment(inner)
    elif kind == "latin1":
        msg = _base(n, to, f"Rechnung Nr. {number} – Straßenbau", rng)
        msg.set_content(
            f"Sehr geehrte Damen und Herren,\nanbei die Rechnung {number}.\n", charset="iso-8859-1"
        )
    elif kind == "spreadsheet":
        msg = _base(n, to, f"Price list {number}", rng)
        msg.set_content("The new price list is attached.\n")
        rows = "\n".join(
            f"item-{i};{rng.randint(1, 500)}.{rng.randint(0, 99):02d}" for i in range(40)
        )
        msg.add_attachment(
            ("item;price\n" + rows + "\n").encode(),
            maintype="text",
            subtype="csv",
            filename=f"prices-{number}.csv",
        )
    else:
        msg = _base(n, to, f"Scanned documents {number}", rng)
        msg.set_content("Scanned on the office copier.\n")
        msg.add_attachment(
            _pdf(f"scan {number}", rng, size=300_000),
            maintype="application",
            subtype="pdf",
            filename=f"scan-{number}.pdf",
        )
    return msg.as_bytes(policy=email.policy.SMTP)


def corpus(count: int, to: str, seed: int = 20261124) -> list[bytes]:
    """``count`` mixed messages to ``to``, in the order they are delivered."""
    rng = random.Random(seed)
    return [make_message(n, to, rng) for n in range(count)]
