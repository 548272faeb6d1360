"""The TLS settings of IMAP and POP3 connections, made once per process."""

from __future__ import annotations

import functools
import os
import ssl


def default_context() -> ssl.SSLContext:
    """``ssl.create_default_context()`` (certificates and host names verified against the
    system's authorities, or those of ``SSL_CERT_FILE``/``SSL_CERT_DIR``), shared by every
    connection: loading the authorities takes tens of milliseconds, which each poll of each
    mailbox would otherwise spend again."""
    return _context(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))


@functools.lru_cache(maxsize=8)
def _context(cert_file: str | None, cert_dir: str | None) -> ssl.SSLContext:
    return ssl.create_default_context()
