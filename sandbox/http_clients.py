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


def _shared(options: dict[str, Any]) -> dict[str, Any]:
    options.setdefault("verify", tls())
    return options


def Client(**options: Any) -> httpx2.Client:  # stands for httpx.Client
    return httpx2.Client(**_shared(options))


def get(url: str, **options: Any) -> httpx2.Response:
    return httpx2.get(url, **_shared(options))


def post(url: str, **options: Any) -> httpx2.Response:
    return httpx2.post(url, **_shared(options))


def patch(url: str, **options: Any) -> httpx2.Response:
    return httpx2.patch(url, **_shared(options))


def delete(url: str, **options: Any) -> httpx2.Response:
    return httpx2.delete(url, **_shared(options))
