"""SASL initial responses for bearer tokens (oauth-facts §2.3, §5.1)."""

from __future__ import annotations

import base64


def xoauth2(user: str, token: str) -> bytes:
    """``user=…^Aauth=Bearer …^A^A`` (Microsoft, Google); not yet base64-encoded."""
    return f"user={user}\x01auth=Bearer {token}\x01\x01".encode()


def oauthbearer(user: str, token: str, host: str = "", port: int = 0) -> bytes:
    """RFC 7628 OAUTHBEARER: ``n,a=user,^Ahost=…^Aport=…^Aauth=Bearer …^A^A``."""
    parts = [f"n,a={user},"]
    if host:
        parts.append(f"host={host}")
    if port:
        parts.append(f"port={port}")
    parts.append(f"auth=Bearer {token}")
    return ("\x01".join(parts) + "\x01\x01").encode()


def b64(data: bytes) -> bytes:
    return base64.b64encode(data)
