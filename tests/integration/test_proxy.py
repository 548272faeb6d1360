"""Every HTTP call of a mailbox through a real authenticating proxy (tinyproxy), and the ways
it fails — wrong or missing proxy credentials, a proxy that cannot be reached, a name that does
not resolve, a timeout, an untrusted certificate — each with its own message naming the field
to fix and never the proxy password."""

from __future__ import annotations

import http.server
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest

from mailintake.errors import NetworkError
from mailintake.net.http import ProxySettings, build_client, translate
from sandbox.ports import free_port
from tests.support.certs import pem_certificate, pem_key, rsa_key, self_signed
from tests.support.proxy import Proxy

WRONG = "not-the-Pass-Word-3"


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/slow":
            self.server.release.wait(10)  # type: ignore[attr-defined]
        body = f"hello {self.path} via {self.headers.get('Via', 'nothing')}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        return  # clients that refuse our certificate hang up mid-handshake


@dataclass
class Target:
    http: str  # http://127.0.0.1:PORT
    https: str  # https://127.0.0.1:PORT, a self-signed certificate
    ca: Path  # that certificate, to trust it

    def trust(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca)


def _serve(server: _Server) -> threading.Thread:
    server.release = threading.Event()  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return thread


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    folder = tmp_path_factory.mktemp("target")
    key = rsa_key()
    cert = self_signed(key, "127.0.0.1", ip_address="127.0.0.1")
    (folder / "cert.pem").write_bytes(pem_certificate(cert))
    (folder / "key.pem").write_bytes(pem_key(key))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    plain = _Server(("127.0.0.1", 0), _Hello)
    tls = _Server(("127.0.0.1", 0), _Hello)
    tls.socket = context.wrap_socket(tls.socket, server_side=True, do_handshake_on_connect=False)
    for server in (plain, tls):
        _serve(server)
    try:
        yield Target(
            f"http://127.0.0.1:{plain.server_address[1]}",
            f"https://127.0.0.1:{tls.server_address[1]}",
            folder / "cert.pem",
        )
    finally:
        for server in (plain, tls):
            server.release.set()  # type: ignore[attr-defined]
            server.shutdown()
            server.server_close()


def fetch(
    url: str,
    proxy: ProxySettings | None,
    *,
    verify: ssl.SSLContext | bool = True,
    timeout: httpx2.Timeout | None = None,
) -> str:
    """What every adapter does: send through build_client, translate transport failures."""
    with build_client(
        proxy=proxy, verify=verify, timeout=timeout or httpx2.Timeout(10.0)
    ) as client:
        try:
            response = client.get(url)
        except httpx2.HTTPError as exc:
            raise translate(exc, f"GET {url}") from exc
        return response.text


def failure(url: str, proxy: ProxySettings | None, **kwargs: object) -> str:
    with pytest.raises(NetworkError) as caught:
        fetch(url, proxy, **kwargs)  # type: ignore[arg-type]
    return str(caught.value)


def good(proxy: Proxy) -> ProxySettings:
    return ProxySettings(proxy.url, proxy.username, proxy.password)


def test_plain_http_through_the_proxy(proxy: Proxy, target: Target) -> None:
    before = proxy.requests_seen(f"{target.http}/hello")
    assert fetch(f"{target.http}/hello", good(proxy)).startswith("hello /hello via 1.1")
    assert proxy.requests_seen(f"{target.http}/hello") == before + 1


def test_https_through_the_proxy_tunnel(proxy: Proxy, target: Target) -> None:
    host_port = target.https.removeprefix("https://")
    before = proxy.requests_seen(host_port)
    answer = fetch(f"{target.https}/secure", good(proxy), verify=target.trust())
    assert answer == "hello /secure via nothing"  # a tunnel: the proxy cannot add headers
    assert proxy.requests_seen(host_port) == before + 1


def test_wrong_proxy_password(proxy: Proxy, target: Target) -> None:
    settings = ProxySettings(proxy.url, proxy.username, WRONG)
    before = proxy.requests_seen(target.http)
    plain = failure(f"{target.http}/token", settings)
    assert plain == (
        f"GET {target.http}/token: the proxy {proxy.url} refused the proxy user name or "
        "password (HTTP 407): check proxy.username and proxy.password"
    )
    tunnel = failure(f"{target.https}/token", settings, verify=target.trust())
    assert tunnel == (
        f"GET {target.https}/token: the proxy {proxy.url} refused the proxy user name or "
        "password (HTTP 407): check proxy.username and proxy.password"
    )
    assert proxy.requests_seen(target.http) == before  # nothing was forwarded
    assert proxy.requests_logged(f"{target.http}/token") >= 1
    for message in (plain, tunnel):
        assert WRONG not in message
        assert proxy.password not in message


def test_a_proxy_refusal_on_plain_http_is_an_httpx2_error(proxy: Proxy, target: Target) -> None:
    """The proxy's own answer to a plain-http request leaves the client as an httpx2 error,
    as a refused CONNECT does: the caller's edge translates it once, and its response is
    closed."""
    wrong = ProxySettings(proxy.url, proxy.username, WRONG)
    for url, settings in (
        (f"{target.http}/token", wrong),
        ("http://login.mailintake.invalid/token", good(proxy)),
    ):
        with (
            build_client(proxy=settings, timeout=httpx2.Timeout(10.0)) as client,
            pytest.raises(httpx2.ProxyError) as caught,
        ):
            client.get(url)
        assert not isinstance(caught.value, NetworkError)
        assert str(translate(caught.value, f"GET {url}")).startswith(
            f"GET {url}: the proxy {proxy.url} "
        )


def test_missing_proxy_credentials(proxy: Proxy, target: Target) -> None:
    for url in (f"{target.http}/token", f"{target.https}/token"):
        message = failure(url, ProxySettings(proxy.url), verify=target.trust())
        assert f"the proxy {proxy.url} requires a user name and password (HTTP 407)" in message
        assert message.endswith("check proxy.username and proxy.password")


def test_credentials_in_the_address_stay_out_of_messages(proxy: Proxy, target: Target) -> None:
    address = proxy.url.replace("http://", f"http://{proxy.username}:{WRONG}@")
    message = failure(f"{target.http}/token", ProxySettings(address, proxy.username, WRONG))
    assert message.startswith(f"GET {target.http}/token: the proxy {proxy.url} refused")
    assert WRONG not in message
    assert WRONG not in repr(ProxySettings(proxy.url, proxy.username, WRONG))


def test_proxy_port_refused(target: Target) -> None:
    address = f"http://127.0.0.1:{free_port()}"
    for url in (f"{target.http}/token", f"{target.https}/token"):
        message = failure(url, ProxySettings(address, "someone", WRONG))
        assert message == (
            f"GET {url}: could not connect to the proxy {address}: connection refused: "
            "check proxy.address"
        )


def test_proxy_name_does_not_resolve(target: Target) -> None:
    settings = ProxySettings("proxy.mailintake.invalid:3128", "someone", WRONG)
    message = failure(f"{target.http}/token", settings)
    assert message == (
        f"GET {target.http}/token: the proxy's host name proxy.mailintake.invalid could not be "
        "resolved: check proxy.address"
    )


def test_target_name_does_not_resolve() -> None:
    url = "http://login.mailintake.invalid/token"
    assert failure(url, None) == (
        f"GET {url}: the host name login.mailintake.invalid could not be resolved: "
        "check the server's address and this machine's DNS"
    )


def test_target_unreachable_from_the_proxy(proxy: Proxy) -> None:
    """Through a proxy the proxy resolves the target; tinyproxy answers the same "500 Unable to
    connect" for an unknown name and a closed port, so the message names both."""
    plain = failure("http://login.mailintake.invalid/token", good(proxy))
    assert plain == (
        "GET http://login.mailintake.invalid/token: the proxy "
        f"{proxy.url} could not reach login.mailintake.invalid:80 (500 Unable to connect): "
        "check that the host name resolves and the server is reachable from the proxy"
    )
    tunnel = failure(f"https://127.0.0.1:{free_port()}/token", good(proxy))
    assert f"the proxy {proxy.url} could not reach 127.0.0.1:" in tunnel
    assert "(500 Unable to connect): check that the host name resolves" in tunnel


def test_untrusted_certificate_and_timeout(proxy: Proxy, target: Target) -> None:
    for settings in (None, good(proxy)):
        message = failure(f"{target.https}/token", settings)
        assert "the TLS certificate of 127.0.0.1 could not be verified" in message
        assert "trusted certificate authorities" in message
    slow = failure(f"{target.http}/slow", None, timeout=httpx2.Timeout(0.5))
    assert slow == f"GET {target.http}/slow: timed out waiting for {target.http[7:]}"
    slow = failure(f"{target.http}/slow", good(proxy), timeout=httpx2.Timeout(0.5))
    assert slow.endswith(f"timed out waiting for {target.http[7:]} through the proxy {proxy.url}")


def test_the_authorities_of_ssl_cert_file_are_trusted(
    proxy: Proxy, target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An internal authority (or a proxy that inspects TLS) named by SSL_CERT_FILE is trusted
    by every HTTP client, as by IMAP and POP3: token servers, Graph, webhooks."""
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    untrusted = failure(f"{target.https}/secure", None)
    assert "the trusted certificate authorities (the system's trusted authorities, or the " in (
        untrusted
    )
    assert "SSL_CERT_FILE" in untrusted
    monkeypatch.setenv("SSL_CERT_FILE", str(target.ca))
    assert fetch(f"{target.https}/secure", None) == "hello /secure via nothing"
    assert fetch(f"{target.https}/secure", good(proxy)) == "hello /secure via nothing"


def test_the_failures_are_distinct_and_name_the_field(proxy: Proxy, target: Target) -> None:
    url = f"{target.http}/token"
    messages = {
        "credentials": failure(url, ProxySettings(proxy.url, proxy.username, WRONG)),
        "refused": failure(url, ProxySettings(f"127.0.0.1:{free_port()}", "u", WRONG)),
        "proxy dns": failure(url, ProxySettings("proxy.mailintake.invalid:3128", "u", WRONG)),
        "target dns": failure("http://login.mailintake.invalid/token", None),
    }
    causes = {
        "credentials": "(HTTP 407)",
        "refused": "connection refused",
        "proxy dns": "could not be resolved",
        "target dns": "could not be resolved",
    }
    for kind, message in messages.items():
        assert causes[kind] in message, kind
        assert WRONG not in message
    assert "proxy.username and proxy.password" in messages["credentials"]
    assert "proxy.address" in messages["refused"]
    assert "proxy.address" in messages["proxy dns"]
    assert "proxy" not in messages["target dns"]
    tails = {
        message.split(": ", 1)[1] if kind != "credentials" else message
        for kind, message in messages.items()
    }
    assert len(tails) == 4
