"""The messages the tests deliver to Dovecot and the Graph emulator are made from one
message the standard library wrote, with the number put in: byte for byte what the standard
library writes for that number (an order's MIME boundary aside, which it draws at random)."""

from __future__ import annotations

import email
import email.policy
import re

from hypothesis import given
from hypothesis import strategies as st

from tests.support import graph, mail

NUMBERS = st.integers(min_value=-(10**12), max_value=10**30)
BOUNDARY = re.compile(rb"={15}\d+==")


def without_boundary(message: bytes) -> bytes:
    return BOUNDARY.sub(b"BOUNDARY", message)


@given(NUMBERS, st.text("0123456789abcdef", min_size=6, max_size=6))
def test_an_order_is_what_the_standard_library_writes(n: int, tag: str) -> None:
    made = mail.order(n, tag)
    assert without_boundary(made) == without_boundary(mail.built(n, tag))
    parsed = email.message_from_bytes(made, policy=email.policy.default)
    attachment = next(iter(parsed.iter_attachments()))
    assert attachment.get_content() == b"%PDF-1.7 order " + str(n).encode()
    assert parsed["Message-ID"] == f"<order-{n}-{tag}@shop.example>"


def test_each_order_has_a_message_id_of_its_own() -> None:
    orders = [mail.raw(7) for _ in range(50)]
    ids = {email.message_from_bytes(o)["Message-ID"] for o in orders}
    assert len(ids) == 50


@given(NUMBERS)
def test_a_claim_is_what_the_standard_library_writes(n: int) -> None:
    assert graph.raw(n) == graph.built(n)
