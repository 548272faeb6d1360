"""A mixed corpus like a business mailbox: short texts, HTML with attachments, a few large."""

from __future__ import annotations

import email.policy
import random
from email.message import EmailMessage


def make_message(n: int, rng: random.Random) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Supplier {n % 97} <billing{n % 97}@supplier.example>"
    msg["To"] = "invoices@contoso.example"
    msg["Subject"] = f"Invoice {n} for order {rng.randint(1000, 99999)}"
    msg["Message-ID"] = f"<bench-{n}@supplier.example>"
    msg["Date"] = "Tue, 24 Nov 2026 09:00:00 +0000"
    kind = n % 10
    text = "Dear customer,\nplease find the invoice attached.\n" * rng.randint(2, 40)
    msg.set_content(text)
    if kind >= 5:
        msg.add_alternative(f"<html><body><p>{text}</p></body></html>", subtype="html")
    if kind >= 7:
        size = rng.randint(20_000, 200_000)
        msg.add_attachment(
            rng.randbytes(size), maintype="application", subtype="pdf", filename=f"invoice-{n}.pdf"
        )
    if n % 1000 == 999:  # a few of several MB
        msg.add_attachment(
            rng.randbytes(3_000_000),
            maintype="application",
            subtype="octet-stream",
            filename=f"scan-{n}.tif",
        )
    return msg.as_bytes(policy=email.policy.SMTP)


def corpus(count: int, seed: int = 7) -> list[bytes]:
    rng = random.Random(seed)
    return [make_message(n, rng) for n in range(count)]
