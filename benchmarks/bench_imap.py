"""IMAP and POP3 import speed against a real Dovecot, side by side in one run:
(a) the raw limit: a pipelined ``UID FETCH 1:* BODY.PEEK[]`` read, of a mailbox Dovecot has
opened once before (as it has when mailintake imports it);
(b) ``mailintake poll`` into the folder output;
(c) getmail6 (PyPI) with XOAUTH2 on a sample, and Debian's fetchmail (no OAuth 2.0: a
password login) on the same sample, as a reference only;
(d) for POP3, a pipelined RETR read (likewise after a first one) and mailintake.
Prints messages per second, the ratios (targets: mailintake ≥ 0.25× the raw read, and ≥ 0.75×
the rate the folder output's floor allows beside the mail server), where each import's CPU
time went, in user space and in the kernel (benchmarks/cpu.py), and the least CPU the folder
output needs for each of these messages, which bounds any import's rate on this machine
(benchmarks/floor.py).
Before each timed part that writes files, it waits until creating files in its folder is
fast (see benchmarks/workdir.py: right after many deletions nearby, it can be 20× slower).

    python -m benchmarks.bench_imap [--messages 10000] [--parts] [--profile]
                                    [--protocols imap,pop3]

``--parts`` prints the wall time spent in the source's and the output's calls during the
import (the rest is the engine and the store; a fetch made ahead in another thread overlaps
the output's work, so the parts can add up to more than the whole). After each import, the
source alone lists and fetches the same messages in the engine's batches, nothing written or
recorded: its rate, and its CPU per message, which bounds the ratio to the floor from above
(reading is work the floor leaves out and no import can).
``--profile`` runs the mailintake part under cProfile too (its rates are then lower) and
prints the top functions (by own time and by cumulative time) of the importing process; the
folder output's worker processes are not in the profile (their share shows as waiting on the
pool).
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import os
import pstats
import pwd
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import cpu, floor
from benchmarks.corpus import corpus
from benchmarks.dovecot_boxes import daemon_mailbox
from benchmarks.fetchmail import fetchmail
from benchmarks.workdir import wait_until_settled, workdir
from mailintake.engine.factories import build_source
from mailintake.engine.poll import BATCH, Poller
from mailintake.engine.runtime import ImportRuntime
from mailintake.oauth.sasl import xoauth2
from mailintake.runtime import open_store
from mailintake.services.apply import apply_document
from mailintake.settings import Settings
from mailintake.store.repo import Store
from tests.support.dovecot import DAEMON_APP, DOMAIN, build_mail_idp, start_dovecot
from tests.support.oauth import microsoft_at


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


# What the poll command holds while it imports: the output's writers, the switch interval.
RUNTIME = ImportRuntime()


class Timings:
    """Seconds spent in the source's and the sink's calls during one poll (wall time)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def timed(self, name: str, call: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                result = call(*args, **kwargs)
                if name.endswith(".fetch"):  # an iterator: time its whole reading
                    result = list(result)
                return result
            finally:
                spent = time.perf_counter() - started
                self.seconds[name] = self.seconds.get(name, 0.0) + spent

        return run

    def wrap(self, part: str, thing: Any) -> Any:
        for method in ("open", "list_items", "fetch", "acknowledge", "deliver", "close"):
            if hasattr(thing, method):
                setattr(thing, method, self.timed(f"{part}.{method}", getattr(thing, method)))
        return thing

    def source(self, *args: Any, **kwargs: Any) -> Any:
        return self.wrap("source", build_source(*args, **kwargs))

    def sink(self, *args: Any, **kwargs: Any) -> Any:
        return self.wrap("sink", RUNTIME.build_sink(*args, **kwargs))

    def report(self, label: str, total: float) -> None:
        print(f"--- {label}: wall time by part (of {total:.2f} s) ---")
        for name, spent in sorted(self.seconds.items(), key=lambda kv: -kv[1]):
            print(f"{name:>22}: {spent:6.2f} s {100 * spent / total:5.1f} %")
        rest = total - sum(self.seconds.values())
        print(f"{'engine + store':>22}: {rest:6.2f} s {100 * rest / total:5.1f} %")


def source_only(store: Store, name: str, token: str) -> tuple[float, float]:
    """Seconds for mailintake's source alone to list the mailbox and fetch every message in
    the engine's batches (no output, no store), and the CPU seconds this process spent."""
    with store.read() as repo:
        spec = repo.get_mailbox(name, reveal=True).spec
    before = os.times()
    started = time.perf_counter()
    source = build_source(spec, lambda: token)
    source.open()
    try:
        items = source.list_items()
        for start in range(0, len(items), BATCH):
            for _item, _body in source.fetch(items[start : start + BATCH]):
                pass
    finally:
        source.close()
    seconds = time.perf_counter() - started
    after = os.times()
    return seconds, (after.user + after.system) - (before.user + before.system)


def print_profile(profile: cProfile.Profile, label: str) -> None:
    stats = pstats.Stats(profile, stream=sys.stdout)
    for order in ("tottime", "cumulative"):
        print(f"--- {label}: top functions by {order} ---")
        stats.sort_stats(order).print_stats(30)


def run(
    count: int,
    *,
    parts: bool = False,
    profile: bool = False,
    protocols: tuple[str, ...] = ("imap", "pop3"),
) -> None:
    with RUNTIME:  # as the commands that import do
        _run(count, parts=parts, profile=profile, protocols=protocols)


def _run(count: int, *, parts: bool, profile: bool, protocols: tuple[str, ...]) -> None:
    messages = corpus(count)
    megabytes = sum(len(m) for m in messages) / 1e6
    print(f"corpus: {count} messages, {megabytes:.0f} MB")
    idp = build_mail_idp()
    with workdir() as tmp, idp.serve() as base:
        root = Path(tmp)
        root.chmod(0o711)
        with start_dovecot(root / "dovecot", f"{base}/introspect") as dovecot:
            results: dict[str, float] = {}
            spent: list[str] = []  # where the CPU time of each import went
            server_cpu_first = 0.0  # the mail server's, during the first import timed
            reading_cpu: dict[str, float] = {}  # seconds of CPU per message, reading alone
            for protocol in protocols:
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
                        "mailboxes": [daemon_mailbox("bench", protocol, port, user, idp.tenant_id)],
                    },
                    {},
                )
                from mailintake.oauth.tokens import TokenManager

                token = TokenManager(store).access_token("bench")
                # What the set-up wrote (the mailbox files, getmail6's Maildir) is flushed
                # before each timed part, so no part pays for another's writes.
                os.sync()
                # The first session to open a mailbox filled as this one was (message files
                # dropped into the Maildir's new/) makes Dovecot take them in: it renames
                # every file into cur/ and builds its index; measured at 0.55-0.6x the rate of
                # the reads after it. mailintake's import reads after the raw read, so the
                # raw read is timed on a mailbox opened once before, like the import's; the
                # first read is printed for reference.
                if protocol == "imap":
                    results["imap raw, first read"] = count / raw_imap_fetch(
                        "127.0.0.1", port, user, token
                    )
                    raw = raw_imap_fetch("127.0.0.1", port, user, token)
                    sample = min(count, 1000)  # getmail6 is slow: a sample of the corpus
                    other = f"bench-getmail@{DOMAIN}"
                    dovecot.add_delegate(DAEMON_APP, other)
                    dovecot.deliver_many(other, messages[:sample])
                    folder = root / "getmail"
                    folder.mkdir()
                    os.sync()
                    wait_until_settled(tmp)
                    results["imap getmail6"] = sample / getmail6(folder, port, other, token)
                    # fetchmail has no OAuth 2.0: a password login over IMAPS, a reference only
                    by_password = f"bench-fetchmail@{DOMAIN}"
                    dovecot.deliver_many(by_password, messages[:sample])
                    dovecot.set_password(by_password, "bench-Reference-1")
                    (root / "fetchmail").mkdir()
                    os.sync()
                    wait_until_settled(tmp)
                    seconds = fetchmail(
                        root / "fetchmail",
                        "localhost",
                        dovecot.imaps_port,
                        by_password,
                        "bench-Reference-1",
                        dovecot.ca_file,
                    )
                    results["imap fetchmail (password)"] = sample / seconds
                else:
                    results["pop3 raw, first read"] = count / raw_pop3_retr(
                        "127.0.0.1", port, user, token, count
                    )
                    raw = raw_pop3_retr("127.0.0.1", port, user, token, count)
                os.sync()
                wait_until_settled(tmp)
                before = cpu.sample(dovecot.process.pid)
                started = time.perf_counter()
                timings = Timings() if parts or profile else None
                poller = (
                    Poller(store, settings.home, runtime=RUNTIME)
                    if timings is None
                    else Poller(
                        store,
                        settings.home,
                        source_factory=timings.source,
                        sink_factory=timings.sink,
                        runtime=RUNTIME,
                    )
                )
                profiler = cProfile.Profile() if profile else None
                if profiler is not None:
                    result = profiler.runcall(poller.poll, "bench")
                else:
                    result = poller.poll("bench")
                ours = time.perf_counter() - started
                after = cpu.sample(dovecot.process.pid)
                spent.append(cpu.report(protocol, before, after, count))
                server_cpu = (after.server - before.server) / count
                assert result.imported == count, result
                if timings is not None:
                    timings.report(protocol, ours)
                # What reading alone costs (listing and fetching, nothing written or
                # recorded): work the floor does not do and no import can leave out.
                seconds, reading = source_only(store, "bench", token)
                results[f"{protocol} source only"] = count / seconds
                reading_cpu[protocol] = reading / count
                if profiler is not None:
                    print_profile(profiler, protocol)
                results[f"{protocol} raw"] = count / raw
                results[f"{protocol} mailintake"] = count / ours
                store.engine.dispose()
                if protocol == protocols[0]:
                    server_cpu_first = server_cpu
            # The least CPU the output needs per message, measured on the same messages
            # (last: its writing must not slow down a timed import): how fast any import
            # could be on this machine at best.
            (root / "floor").mkdir()
            os.sync()
            wait_until_settled(tmp)
            bound = floor.measure(messages, root / "floor")
            spent.append(bound.report(results[f"{protocols[0]} raw"], server_cpu_first))
            for name, rate in results.items():
                print(f"{name:>26}: {rate:9.0f} msg/s")
            for line in spent:
                print(line)
            for protocol in protocols:
                ratio = results[f"{protocol} mailintake"] / results[f"{protocol} raw"]
                print(f"{protocol}: mailintake / raw read = {ratio:.2f} (target >= 0.25)")
            first = protocols[0]
            ratio = results[f"{first} mailintake"] / bound.ceiling(server_cpu_first)
            print(
                f"{first}: mailintake / the folder output's floor beside the mail server = "
                f"{ratio:.2f} (target >= 0.75)"
            )
            reading = reading_cpu[first]
            bound_with_reading = bound.ceiling(server_cpu_first + reading) / bound.ceiling(
                server_cpu_first
            )
            print(
                f"{first}: reading alone (listing and fetching, nothing written or recorded) "
                f"takes {reading * 1e6:,.0f} µs of CPU per message; with it, no import passes "
                f"{bound_with_reading:.2f} of that floor on these CPUs, even with all of them "
                "busy all the time"
            )
            if "imap" not in protocols:
                return
            ratio = results["imap mailintake"] / results["imap getmail6"]
            print(f"imap: mailintake / getmail6 = {ratio:.1f} (target >= 20)")
            ratio = results["imap mailintake"] / results["imap fetchmail (password)"]
            print(f"imap: mailintake / fetchmail with a password = {ratio:.1f} (reference only)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument(
        "--profile", action="store_true", help="run the mailintake part under cProfile"
    )
    parser.add_argument(
        "--parts", action="store_true", help="print the time spent in the source and the output"
    )
    parser.add_argument(
        "--protocols",
        default="imap,pop3",
        help="which imports to time, comma-separated (imap, pop3)",
    )
    arguments = parser.parse_args()
    chosen = tuple(p for p in arguments.protocols.split(",") if p)
    if not chosen or set(chosen) - {"imap", "pop3"}:
        parser.error("--protocols takes imap, pop3 or both")
    run(arguments.messages, parts=arguments.parts, profile=arguments.profile, protocols=chosen)
