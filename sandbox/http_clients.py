"""HTTP clients for the sandbox and the tests, sharing one TLS context.

httpx builds a new TLS context for every client it makes, loading the trusted authorities
again: 28 ms of CPU each (measured here), where a client given a context takes 0.05 ms. The
tests make a client for every token a login asks for and every sign-in a browser does,
thousands a run. These take the same arguments as httpx's own, with the same verification
(``httpx.create_ssl_context()``) unless ``verify`` says otherwise."""

from __future__ import annotations

import functools
import ssl
from typing import Any

import httpx2


@functools.cache
def tls() -> ssl.SSLContext:
    """The context httpx would make for a client (SSL_CERT_FILE/SSL_CERT_DIR read once)."""
    return httpx2.create_ssl_context()


def Client(**options: Any) -> httpx2.Client:
    options.setdefault("verify", tls())
    return httpx2.Client(**options)


def get(url: str, **options: Any) -> httpx2.Response:
    options.setdefault("verify", tls())
    return httpx2.get(url, **options)


def post(url: str, **options: Any) -> httpx2.Response:
    options.setdefault("verify", tls())
    return httpx2.post(url, **options)


def patch(url: str, **options: Any) -> httpx2.Response:
    options.setdefault("verify", tls())
    return httpx2.patch(url, **options)


def delete(url: str, **options: Any) -> httpx2.Response:
    options.setdefault("verify", tls())
    return httpx2.delete(url, **options)
