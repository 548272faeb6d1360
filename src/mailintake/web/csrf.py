"""Whether a request comes from a page of this server: the test that refuses cross-site
changes made with the session cookie (see web/security.py).

Browsers send ``Sec-Fetch-Site`` with every request; it is ``same-origin`` for this server's
own pages and ``none`` when the user typed the address or used a bookmark. Older browsers
send only ``Origin`` on a POST, which must then be this server's own origin (scheme, host and
port from the ``Host`` header). A request with neither is refused.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.requests import HTTPConnection

_DEFAULT_PORTS = {"http": "80", "https": "443"}
_HTTP_SCHEMES = {"ws": "http", "wss": "https"}  # a WebSocket's page is served over HTTP(S)


def _origin(scheme: str, netloc: str) -> str:
    """``scheme://host[:port]`` in one form: lower case, without the scheme's default port."""
    netloc = netloc.lower()
    host, port = netloc, ""
    if netloc.startswith("["):  # an IPv6 address
        end = netloc.find("]") + 1
        host, rest = netloc[:end], netloc[end:]
        port = rest[1:] if rest.startswith(":") else ""
    elif ":" in netloc:
        host, _, port = netloc.rpartition(":")
    if port == _DEFAULT_PORTS.get(scheme):
        port = ""
    return f"{scheme}://{host}:{port}" if port else f"{scheme}://{host}"


def same_origin(request: HTTPConnection) -> bool:
    """Whether the browser says this request comes from a page of this server."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site in ("same-origin", "none")
    origin = request.headers.get("origin")
    host = request.headers.get("host")
    if not origin or not host or origin == "null":
        return False
    parts = urlsplit(origin)
    if not parts.scheme or not parts.netloc or parts.path not in ("", "/"):
        return False
    own_scheme = _HTTP_SCHEMES.get(request.url.scheme, request.url.scheme)
    return _origin(parts.scheme.lower(), parts.netloc) == _origin(own_scheme, host)
