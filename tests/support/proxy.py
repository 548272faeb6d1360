"""A real authenticating HTTP proxy for tests: Debian's tinyproxy, run as an ordinary
foreground process on a free loopback port with basic authentication and a log we can read.

Use it as the ``proxy`` fixture of tests/integration/conftest.py (one proxy per test
module)::

    def test_it(proxy: Proxy) -> None:
        settings = ProxySettings(proxy.url, proxy.username, proxy.password)
        ...
        assert proxy.requests_seen("127.0.0.1:8080/token") == 1

or start one yourself with ``start_proxy(tmp_path)`` (stop it with ``stop()``, or use it in a
``with`` block).

What tinyproxy 1.11 logs, and what ``requests_seen`` parses::

    CONNECT ...: Request (file descriptor 5): GET http://127.0.0.1:38125/x HTTP/1.1
    CONNECT ...: Request (file descriptor 5): CONNECT login.example.com:443 HTTP/1.1
    INFO    ...: opensock: opening connection to 127.0.0.1:38125
    CONNECT ...: Established connection to host "127.0.0.1" using file descriptor 6.

The Request line is written before the proxy checks the credentials, so a request counts as
proxied only when an "Established connection" line for its host follows it. tinyproxy 1.11
answers wrong credentials with 401 (missing ones with 407) and logs nothing more.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from sandbox.ports import free_port
from sandbox.processes import ServerProcess
from tests.support.services import service_missing

PROXY_USER = "proxyuser"
PROXY_PASSWORD = "proxy-Pass-Word-7"
_REQUEST = re.compile(r"Request \(file descriptor (\d+)\): (\S+) (\S+)")
_ESTABLISHED = re.compile(r'Established connection to host "([^"]*)"')


def _host_of(method: str, target: str) -> str:
    if method == "CONNECT":
        return target.rsplit(":", 1)[0].strip("[]")
    return urlsplit(target).hostname or ""


@dataclass
class Proxy(ServerProcess):
    url: str  # http://127.0.0.1:PORT, without credentials
    username: str
    password: str = field(repr=False)
    log: Path
    process: subprocess.Popen[bytes] = field(repr=False)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def requests_logged(self, substring: str) -> int:
        """Requests that reached the proxy (forwarded or refused) whose target (the URL of a
        plain-http request, ``host:port`` of a CONNECT) contains ``substring``."""
        return sum(
            1
            for match in map(_REQUEST.search, self.log_text().splitlines())
            if match and substring in match.group(3)
        )

    def requests_seen(self, substring: str) -> int:
        """Requests the proxy forwarded (it connected to the target) whose target contains
        ``substring``: a Request line followed by an "Established connection" to its host."""
        pending: list[tuple[str, str]] = []  # (host, target), oldest first
        seen = 0
        for line in self.log_text().splitlines():
            request = _REQUEST.search(line)
            if request:
                method, target = request.group(2), request.group(3)
                pending.append((_host_of(method, target), target))
                continue
            established = _ESTABLISHED.search(line)
            if established:
                host = established.group(1)
                for index in range(len(pending) - 1, -1, -1):
                    if pending[index][0] == host:
                        seen += substring in pending.pop(index)[1]
                        break
        return seen


def start_proxy(folder: Path, username: str = PROXY_USER, password: str = PROXY_PASSWORD) -> Proxy:
    """Start tinyproxy on 127.0.0.1 and a free port, requiring ``username``/``password``
    (basic auth), logging at Info level (with Connect lines) to ``folder/tinyproxy.log``,
    allowing only 127.0.0.1 as a client, with no upstream proxy and CONNECT to any port;
    return once it accepts connections."""
    binary = shutil.which("tinyproxy") or (
        "/usr/bin/tinyproxy" if Path("/usr/bin/tinyproxy").exists() else None
    )
    if binary is None:
        service_missing("tinyproxy (Debian package tinyproxy)")
        raise AssertionError("unreachable")
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = folder / "tinyproxy.log"
    config = folder / "tinyproxy.conf"
    # No ConnectPort line: CONNECT is allowed to every port (test servers use high ports).
    # No Upstream line: tinyproxy connects to targets itself, 127.0.0.1 ones included.
    config.write_text(
        f"Port {port}\n"
        "Listen 127.0.0.1\n"
        "Timeout 60\n"
        f'LogFile "{log}"\n'
        "LogLevel Info\n"
        "MaxClients 20\n"
        "Allow 127.0.0.1\n"
        f"BasicAuth {username} {password}\n"
    )
    errors = folder / "tinyproxy.stderr"
    with errors.open("wb") as stderr:  # a file, not a pipe nobody drains
        process = subprocess.Popen(
            [binary, "-d", "-c", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    deadline = time.monotonic() + 15
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            if process.poll() is not None:
                said = errors.read_text(errors="replace").strip()
                raise AssertionError(f"tinyproxy did not start: {said}") from None
            if time.monotonic() > deadline:
                Proxy(f"http://127.0.0.1:{port}", username, password, log, process).stop()
                raise AssertionError("tinyproxy did not listen within 15 s") from None
            time.sleep(0.05)
    return Proxy(f"http://127.0.0.1:{port}", username, password, log, process)
