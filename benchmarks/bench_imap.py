"""IMAP and POP3 import speed against a real Dovecot, side by side in one run:
(a) the raw limit: a pipelined ``UID FETCH 1:* BODY.PEEK[]`` read;
(b) ``mailintake poll`` into the folder output;
(c) for POP3, a pipelined RETR read and mailintake.
Prints messages per second and the ratios (targets: mailintake ≥ 0.25× the raw read).

    python -m benchmarks.bench_imap [--messages 10000]
"""

from __future__ import annotations

import argparse
import base64
import os
import pwd
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.corpus import corpus
from mailintake.config.apply import apply_document
from mailintake.engine.poll import Poller
from mailintake.oauth.sasl import xoauth2
from mailintake.runtime import open_store
from mailintake.settings import Settings
from tests.integration.oauth_support import microsoft_at
from tests.support.dovecot import DAEMON_APP, DAEMON_SECRET, DOMAIN, build_mail_idp, start_dovecot


def _read_until(sock: socket.socket, marker: bytes, chunk: int = 1 << 20) -> int:
    data = b""
    total = 0
    while True:
        block = sock.recv(chunk)
        if not block:
            raise RuntimeError("connection closed")
        total += len(block)
        data = (data + block)[-4096:]
        if marker in data:
            return total


def raw_imap_fetch(host: str, port: int, user: str, token: str) -> float:
    started = time.perf_counter()
    with socket.create_connection((host, port)) as sock:
        sock.recv(4096)
        auth = base64.b64encode(xoauth2(user, token)).decode()
        sock.sendall(f"a1 AUTHENTICATE XOAUTH2 {auth}\r\n".encode())
        _read_until(sock, b"a1 OK")
        sock.sendall(b"a2 SELECT INBOX\r\n")
        _read_until(sock, b"a2 OK")
        sock.sendall(b"a3 UID FETCH 1:* (BODY.PEEK[])\r\n")
        _read_until(sock, b"a3 OK")
    return time.perf_counter() - started


def raw_pop3_retr(host: str, port: int, user: str, token: str, count: int) -> float:
    started = time.perf_counter()
    with socket.create_connection((host, port)) as sock:
        sock.recv(4096)
        sock.sendall(b"AUTH XOAUTH2\r\n")
        sock.recv(4096)
        sock.sendall(base64.b64encode(xoauth2(user, token)) + b"\r\n")
        _read_until(sock, b"+OK")
        window = 64
        sent = 0
        done = 0
        buffer = b""
        while done < count:
            while sent < count and sent - done < window:
                sent += 1
                sock.sendall(f"RETR {sent}\r\n".encode())
            block = sock.recv(1 << 20)
            buffer += block
            done += buffer.count(b"\r\n.\r\n")
            buffer = buffer[buffer.rfind(b"\r\n.\r\n") + 5 :] if b"\r\n.\r\n" in buffer else buffer
        sock.sendall(b"QUIT\r\n")
    return time.perf_counter() - started


def getmail6(folder: Path, port: int, user: str, token: str) -> float:
    """getmail6 (PyPI) fetching the same kind of mailbox with XOAUTH2 into a Maildir."""
    binary = Path(sys.executable).with_name("getmail")
    if not binary.exists():
        raise SystemExit("getmail6 is not installed: make bench installs it (extra 'bench')")
    token_file = folder / "token"
    token_file.write_text(token)
    maildir = folder / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    as_user = ""
    if os.geteuid() == 0:  # getmail6 refuses to deliver as root: it delivers as vmail
        account = pwd.getpwnam("vmail")
        for path in (maildir, *maildir.iterdir()):
            os.chown(path, account.pw_uid, account.pw_gid)
        as_user = "user = vmail\n"
    rc = folder / "getmailrc"
    rc.write_text(
        "[retriever]\ntype = SimpleIMAPRetriever\nserver = 127.0.0.1\n"
        f"port = {port}\nusername = {user}\nuse_xoauth2 = True\n"
        f'password_command = ("/bin/cat", "{token_file}")\nmailboxes = ("INBOX",)\n'
        f"[destination]\ntype = Maildir\npath = {maildir}/\n{as_user}"
        "[options]\nread_all = true\ndelete = false\nverbose = 0\n"
    )
    started = time.perf_counter()
    done = subprocess.run(
        [str(binary), "--rcfile", str(rc), "--getmaildir", str(folder)],
        check=False,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"getmail6 failed ({done.returncode}): {done.stdout} {done.stderr}")
    return time.perf_counter() - started


def run(count: int) -> None:
    messages = corpus(count)
    megabytes = sum(len(m) for m in messages) / 1e6
    print(f"corpus: {count} messages, {megabytes:.0f} MB")
    idp = build_mail_idp()
    with tempfile.TemporaryDirectory() as tmp, idp.serve() as base:
        root = Path(tmp)
        root.chmod(0o711)
        with start_dovecot(root / "dovecot", f"{base}/introspect") as dovecot:
            results: dict[str, float] = {}
            for protocol in ("imap", "pop3"):
                user = f"bench-{protocol}@{DOMAIN}"
                dovecot.add_delegate(DAEMON_APP, user)
                dovecot.deliver_many(user, messages)
                settings = Settings(home=root / f"home-{protocol}")
                store = open_store(settings)
                port = dovecot.imap_port if protocol == "imap" else dovecot.pop3_port
                apply_document(
                    store,
                    {
                        "authorization_servers": [microsoft_at(base)],
                        "outputs": [
                            {"name": "out", "type": "folder", "path": str(root / f"out-{protocol}")}
                        ],
                        "mailboxes": [
                            {
                                "name": "bench",
                                "protocol": protocol,
                                "host": "127.0.0.1",
                                "port": port,
                                "security": "none",
                                "username": user,
                                "output": "out",
                                "after_import": "keep",
                                "oauth": {
                                    "authorization_server": "MICROSOFT",
                                    "grant_type": "client_credentials",
                                    "tenant_id": idp.tenant_id,
                                    "client_id": DAEMON_APP,
                                    "client_secret": DAEMON_SECRET,
                                },
                            }
                        ],
                    },
                    {},
                )
                from mailintake.oauth.tokens import TokenManager

                token = TokenManager(store).access_token("bench")
                if protocol == "imap":
                    raw = raw_imap_fetch("127.0.0.1", port, user, token)
                    sample = min(count, 1000)  # getmail6 is slow: a sample of the corpus
                    other = f"bench-getmail@{DOMAIN}"
                    dovecot.add_delegate(DAEMON_APP, other)
                    dovecot.deliver_many(other, messages[:sample])
                    folder = root / "getmail"
                    folder.mkdir()
                    results["imap getmail6"] = sample / getmail6(folder, port, other, token)
                else:
                    raw = raw_pop3_retr("127.0.0.1", port, user, token, count)
                started = time.perf_counter()
                result = Poller(store, settings.home).poll("bench")
                ours = time.perf_counter() - started
                assert result.imported == count, result
                results[f"{protocol} raw"] = count / raw
                results[f"{protocol} mailintake"] = count / ours
                store.engine.dispose()
            for name, rate in results.items():
                print(f"{name:>18}: {rate:9.0f} msg/s")
            for protocol in ("imap", "pop3"):
                ratio = results[f"{protocol} mailintake"] / results[f"{protocol} raw"]
                print(f"{protocol}: mailintake / raw read = {ratio:.2f} (target >= 0.25)")
            ratio = results["imap mailintake"] / results["imap getmail6"]
            print(f"imap: mailintake / getmail6 = {ratio:.1f} (target >= 20)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=10_000)
    run(parser.parse_args().messages)
