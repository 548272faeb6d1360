"""Which certificate authorities every TLS connection trusts, in one place: the system's, or
those of ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` when set (an internal authority, a proxy that
inspects TLS). IMAP and POP3 connections, token servers, Graph and webhooks all verify
against the same authorities.

Each context is made once per process and setting, and shared by every connection: loading
the authorities takes tens of milliseconds, which each poll of each mailbox would otherwise
spend again. HTTP has a context of its own because the HTTP client sets its protocols (ALPN)
on the context it is given."""

from __future__ import annotations

import functools
import os
import ssl
from typing import Literal

HINT = "the system's trusted authorities, or the PEM bundle SSL_CERT_FILE names"


def default_context() -> ssl.SSLContext:
    """For IMAP and POP3: host names and certificates verified."""
    return _context("mail", *_settings())


def http_context() -> ssl.SSLContext:
    """For HTTP clients (``net.http.build_client``): the same verification."""
    return _context("http", *_settings())


def context_trusting(ca_file: str | None) -> ssl.SSLContext:
    """``default_context()``, or one that also trusts the PEM authorities in ``ca_file`` (a
    private authority's certificate, for a server inside the company). Made once per file
    and setting, and again when the file changes."""
    if ca_file is None:
        return default_context()
    try:
        found = os.stat(ca_file)
    except OSError:
        version = None  # loading it raises the reason, and nothing is kept
    else:
        version = (found.st_ino, found.st_size, found.st_mtime_ns)
    return _context_trusting(ca_file, version, *_settings())


@functools.lru_cache(maxsize=8)
def _context_trusting(
    ca_file: str, version: tuple[int, int, int] | None, cert_file: str | None, cert_dir: str | None
) -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.load_verify_locations(cafile=ca_file)
    return context


def _settings() -> tuple[str | None, str | None]:
    return os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")


@functools.lru_cache(maxsize=8)
def _context(
    purpose: Literal["mail", "http"], cert_file: str | None, cert_dir: str | None
) -> ssl.SSLContext:
    """``ssl.create_default_context`` reads SSL_CERT_FILE and SSL_CERT_DIR itself (through
    OpenSSL's default paths); they are part of the cache key so that a changed setting is
    read again."""
    return ssl.create_default_context()


def describe(exc: BaseException) -> str:
    """A connection failure in words; for a certificate that could not be verified, what to
    check (the server's certificate is for another name, or from an authority not trusted
    here)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        why = exc.verify_message or str(exc)
        return (
            f"the server's TLS certificate could not be verified ({why}): check the host name "
            f"and the trusted certificate authorities ({HINT})"
        )
    return str(exc)
