"""Discovery of a server's endpoints from its issuer, against a real HTTP server on loopback."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from mailintake.errors import ConfigError, NetworkError
from mailintake.net.http import build_client
from mailintake.oauth.discovery import discover, metadata_urls
from sandbox.ports import free_port


class Metadata(ThreadingHTTPServer):
    documents: dict[str, Any]
    requests: list[str]


class Handler(BaseHTTPRequestHandler):
    server: Metadata

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        document = self.server.documents.get(self.path)
        body = json.dumps(document).encode() if document is not None else b"not found"
        self.send_response(200 if document is not None else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def idp() -> Iterator[Metadata]:
    server = Metadata(("127.0.0.1", 0), Handler)
    server.documents = {}
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def base(server: Metadata) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def test_metadata_urls() -> None:
    assert metadata_urls("https://as.example.com/tenant1") == [
        "https://as.example.com/tenant1/.well-known/openid-configuration",
        "https://as.example.com/.well-known/oauth-authorization-server/tenant1",
    ]


def test_openid_configuration(idp: Metadata) -> None:
    issuer = base(idp) + "/realms/mail"
    idp.documents["/realms/mail/.well-known/openid-configuration"] = {
        "issuer": issuer,
        "authorization_endpoint": issuer + "/auth",
        "token_endpoint": issuer + "/token",
        "device_authorization_endpoint": issuer + "/device",
        "userinfo_endpoint": issuer + "/userinfo",
    }
    with build_client() as client:
        found = discover(issuer, client)
    assert found == {
        "issuer": issuer,
        "authorization_endpoint": issuer + "/auth",
        "token_endpoint": issuer + "/token",
        "device_authorization_endpoint": issuer + "/device",
    }


def test_rfc8414_fallback(idp: Metadata) -> None:
    issuer = base(idp) + "/t1"
    idp.documents["/.well-known/oauth-authorization-server/t1"] = {
        "issuer": issuer,
        "token_endpoint": issuer + "/token",
    }
    with build_client() as client:
        found = discover(issuer, client)
    assert found == {"issuer": issuer, "token_endpoint": issuer + "/token"}
    assert idp.requests == [
        "/t1/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server/t1",
    ]


def test_issuer_mismatch_is_refused(idp: Metadata) -> None:
    issuer = base(idp)
    idp.documents["/.well-known/openid-configuration"] = {
        "issuer": "https://evil.example.com",
        "token_endpoint": issuer + "/token",
    }
    with build_client() as client, pytest.raises(ConfigError, match="names issuer"):
        discover(issuer, client)


def test_no_metadata_and_no_server(idp: Metadata) -> None:
    with build_client() as client, pytest.raises(NetworkError, match="answered HTTP 404"):
        discover(base(idp), client)
    port = free_port()
    refused = r"could not connect to 127\.0\.0\.1:[0-9]+: connection refused"
    with build_client() as client, pytest.raises(NetworkError, match=refused):
        discover(f"http://127.0.0.1:{port}", client)
    with build_client() as client, pytest.raises(ConfigError, match="must use https"):
        discover("http://idp.example.com", client)
