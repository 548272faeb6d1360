"""Log lines never carry a secret in clear."""

from __future__ import annotations

import io

from mailintake.crypto import SecretBox, generate_key
from mailintake.observability.logging import configure, get_logger


def test_secret_keys_and_known_secret_values_are_masked() -> None:
    stream = io.StringIO()
    configure("debug", stream=stream)
    box = SecretBox([generate_key()])
    stored = box.encrypt("a-known-Secret-9481")  # every secret that passes the box is known
    log = get_logger("test")
    log.info("token.refreshed", client_secret="plain-Value-1122", mailbox="invoices")
    log.warning("oauth.failed", detail="server said: a-known-Secret-9481 is wrong")
    log.info("proxy", headers={"Authorization": "Bearer abc-def-123", "Accept": "*/*"})
    try:
        raise RuntimeError(f"cannot use {box.decrypt(stored)}")
    except RuntimeError:
        log.exception("unexpected")
    text = stream.getvalue()
    assert "mailbox=invoices" in text
    assert "Accept" in text
    for secret in ("plain-Value-1122", "a-known-Secret-9481", "abc-def-123"):
        assert secret not in text
    assert text.count("***") >= 4
