"""The loopback redirect listener (RFC 8252 §7.3): receives the one redirect that ends an
authorization-code sign-in on http://localhost or http://127.0.0.1."""

from __future__ import annotations

import http.server
import threading
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from mailintake.errors import NetworkError

SUCCESS_PAGE = (
    "<!doctype html><html><head><meta charset='utf-8'><title>mailintake</title></head>"
    "<body><h1>{title}</h1><p>{text}</p></body></html>"
)


class LoopbackListener:
    """Receives one redirect on 127.0.0.1 (RFC 8252 §7.3). A redirect URI without a port
    gets a free one: Entra ignores the port of loopback redirect URIs (oauth-facts §1.2)."""

    def __init__(self, redirect_uri: str) -> None:
        parts = urlsplit(redirect_uri)
        self._path = parts.path or "/"
        self.params: dict[str, str] | None = None
        self._done = threading.Event()
        listener = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                target = urlsplit(self.path)
                if target.path.rstrip("/") != listener._path.rstrip("/"):
                    self.send_error(404)
                    return
                params = dict(parse_qsl(target.query))
                ok = "code" in params
                title = "Login successful" if ok else "Sign-in did not complete"
                text = (
                    "mailintake received the authorization; you can close this window."
                    if ok
                    else "Return to mailintake to see why."
                )
                body = SUCCESS_PAGE.format(title=title, text=text).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                listener.params = params
                listener._done.set()

            def log_message(self, format: str, *args: object) -> None:
                return  # the query holds the authorization code: never logged

        host = "127.0.0.1"
        try:
            self._server = http.server.HTTPServer((host, parts.port or 0), Handler)
        except OSError as exc:
            raise NetworkError(
                f"cannot listen on {host}:{parts.port} for the redirect ({exc.strerror}); "
                "free that port or register a loopback redirect URI without a port"
            ) from exc
        port = self._server.server_address[1]
        netloc = f"{parts.hostname}:{port}"
        self.redirect_uri = urlunsplit((parts.scheme, netloc, parts.path or "/", "", ""))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def wait(self, timeout: float) -> dict[str, str] | None:
        self._done.wait(timeout)
        return self.params

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
