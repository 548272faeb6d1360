"""What a poll with nothing new costs against how many messages the server keeps (the
after-import actions ``keep`` and ``mark_read`` leave them there), on a real Dovecot and on
the Graph emulator: IMAP, POP3 and Graph mailboxes of 0, 10,000 and 50,000 messages, all
imported before, polled in turn (paired: each round polls every size once) so that each
size is compared with the empty mailbox in the same run. Printed per size: the extra wall
milliseconds and CPU milliseconds of this process over the empty mailbox (medians), the
bytes the server sent after sign-in and SELECT, and the commands sent then.

For IMAP, the first poll of each mailbox (no checkpoint yet: a listing of the whole folder,
screened by message key, as every poll did before checkpoints) is printed for comparison.
For POP3, which has no cursor (UIDL is the protocol), the screening of the UIDL answer
against the store is timed on its own too, as microseconds per kept message, before and
after in turn: the answer read line by line and the mailbox's keys loaded once and compared
as sets; the answer read as one text and recognised by the digest of the last listing.

For Graph, the first poll of each mailbox (no deltaLink yet: a first delta round lists the
whole folder, screened by message key) is printed for comparison; then each poll follows
the saved deltaLink, and the requests the emulator answered per poll are printed. The
emulator runs in this process: its work is in the CPU figures.

    PYTHONPATH=. python -m benchmarks.bench_poll_cost [--sizes 0,10000,50000] [--rounds 15]
        [--protocols imap,pop3,graph]

Targets: IMAP ≤ 5 ms extra at 50,000 kept messages and one round trip after sign-in
(nothing but LOGOUT after SELECT); POP3 screening ≤ 1 µs per kept message; Graph ≤ 5 ms
extra at 50,000 kept messages and one request per poll with nothing new.
"""

from __future__ import annotations

import argparse
import base64
import imaplib
import poplib
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.dovecot_boxes import daemon_mailbox
from benchmarks.workdir import workdir
from mailintake.engine.batches import Statuses
from mailintake.engine.factories import build_source
from mailintake.engine.poll import Poller
from mailintake.keys import graph_key, imap_key_prefix, pop3_key
from mailintake.oauth.sasl import xoauth2
from mailintake.oauth.tokens import TokenManager
from mailintake.runtime import open_store
from mailintake.services.apply import apply_document
from mailintake.settings import Settings
from mailintake.sources.base import MailSource, TokenProvider
from mailintake.sources.pop3_listing import _read, screen
from mailintake.store import imports
from mailintake.store.imports import ImportEntry
from mailintake.store.repo import Store
from sandbox.dovecot import Dovecot
from sandbox.graph import GraphEmulator
from tests.support.dovecot import DAEMON_APP, DOMAIN, build_mail_idp, start_dovecot
from tests.support.oauth import GRAPH_APP, GRAPH_SECRET, build_idp, make_certificate, microsoft_at


def message(n: int) -> bytes:
    return (
        f"From: orders@shop.example\r\nTo: intake@contoso.example\r\nSubject: Order {n}\r\n"
        f"Message-ID: <order-{n}@shop.example>\r\nDate: Tue, 24 Nov 2026 09:00:00 +0000\r\n"
        f"\r\norder {n}\r\n"
    ).encode()


class Counting:
    """The server's side of a session after sign-in and SELECT: bytes read, commands sent."""

    def __init__(self, inner: Any, wire: Wire) -> None:
        self.inner, self.wire = inner, wire

    def readline(self, *args: Any) -> bytes:
        data: bytes = self.inner.readline(*args)
        self.wire.received += len(data)
        return data

    def read(self, *args: Any) -> bytes:
        data: bytes = self.inner.read(*args)
        self.wire.received += len(data)
        return data

    def read1(self, *args: Any) -> bytes:
        data: bytes = self.inner.read1(*args)
        self.wire.received += len(data)
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class Wire:
    """A source factory: the real source, counted once it is open."""

    def __init__(self) -> None:
        self.received = 0
        self.commands: list[str] = []

    def __call__(
        self, spec: Any, token: TokenProvider, renew: TokenProvider | None = None, **options: Any
    ) -> MailSource:
        source = build_source(spec, token, renew, **options)
        opening = source.open

        def open_and_count() -> None:
            opening()
            connection = getattr(source.client, "_imap", source.client)  # type: ignore[attr-defined]
            connection.file = Counting(connection.file, self)
            send = connection.send if hasattr(connection, "send") else None
            if send is not None:

                def sent(data: bytes) -> None:
                    self.commands.append(" ".join(data.decode(errors="replace").split()[1:2]))
                    send(data)

                connection.send = sent

        source.open = open_and_count  # type: ignore[method-assign]
        return source


def configure(
    store: Store, root: Path, base: str, tenant: str, protocol: str, port: int, user: str
) -> None:
    apply_document(
        store,
        {
            "authorization_servers": [microsoft_at(base)],
            "outputs": [{"name": "out", "type": "folder", "path": str(root / "out")}],
            "mailboxes": [daemon_mailbox(user.split("@")[0], protocol, port, user, tenant)],
        },
        {},
    )


def record_imap(store: Store, dovecot: Dovecot, name: str, user: str, count: int) -> None:
    """The messages recorded as imported and acknowledged (as a poll leaves them)."""
    uidvalidity = dovecot.mailbox_status(user)["uidvalidity"]
    prefix = imap_key_prefix("INBOX", uidvalidity)
    entries = [
        ImportEntry(f"{prefix}-{uid}", {"folder": "INBOX", "uidvalidity": uidvalidity, "uid": uid})
        for uid in range(1, count + 1)
    ]
    _record(store, name, entries)


def pop3_uidls(dovecot: Dovecot, user: str, token: str) -> list[bytes]:
    client = poplib.POP3("127.0.0.1", dovecot.pop3_port, timeout=60)
    try:
        client._shortcmd("AUTH XOAUTH2")  # type: ignore[attr-defined]
        client._shortcmd(base64.b64encode(xoauth2(user, token)).decode())  # type: ignore[attr-defined]
        lines: list[bytes] = client.uidl()[1]  # type: ignore[assignment]
        return lines
    finally:
        client.quit()


def record_pop3(store: Store, name: str, lines: list[bytes]) -> None:
    entries = []
    for line in lines:
        uidl = line.decode().split()[1]
        entries.append(ImportEntry(pop3_key(uidl), {"uidl": uidl}))
    _record(store, name, entries)


def _record(store: Store, name: str, entries: list[ImportEntry]) -> None:
    for start in range(0, len(entries), 5000):
        chunk = entries[start : start + 5000]
        with store.begin() as repo:
            imports.record(repo.conn, name, chunk)
            imports.acknowledged(repo.conn, name, [e.key for e in chunk])


def timed(call: Callable[[], Any]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    call()
    return time.perf_counter() - wall, time.process_time() - cpu


def run(sizes: list[int], rounds: int, protocols: list[str]) -> None:
    with workdir() as tmp:
        root = Path(tmp)
        root.chmod(0o711)
        mail = [p for p in protocols if p in ("imap", "pop3")]
        if mail:
            idp = build_mail_idp()
            with (
                idp.serve() as base,
                start_dovecot(root / "dovecot", f"{base}/introspect") as dovecot,
            ):
                store = open_store(Settings(home=root / "home"))
                for protocol in mail:
                    _protocol(protocol, sizes, rounds, store, dovecot, base, idp.tenant_id, root)
                store.engine.dispose()
        if "graph" in protocols:
            _graph(sizes, rounds, root)


def _graph(sizes: list[int], rounds: int, root: Path) -> None:
    idp = build_idp(make_certificate(root))
    graph = GraphEmulator(idp)
    with idp.serve(), graph.serve() as base:
        home = root / "graph-home"
        store = open_store(Settings(home=home))
        names: dict[int, str] = {}
        for size in sizes:
            started = time.perf_counter()
            names[size] = _graph_mailbox(store, graph, root, idp.tenant_id, base, size)
            seconds = time.perf_counter() - started
            print(f"{names[size]}: {size} messages seeded and recorded in {seconds:.1f} s")
        poller = Poller(store, home)
        print("--- graph: first poll (no deltaLink yet: a first delta round, screened) ---")
        for size in sizes:
            graph.reset_stats()
            wall, cpu = timed(lambda n=names[size]: _quiet(poller.poll(n)))
            print(
                f"{size:>7} kept: {1000 * wall:8.1f} ms wall {1000 * cpu:8.1f} ms CPU, "
                f"{graph.stats['requests']} requests"
            )
        walls: dict[int, list[float]] = {s: [] for s in sizes}
        cpus: dict[int, list[float]] = {s: [] for s in sizes}
        asked: dict[int, list[int]] = {s: [] for s in sizes}
        for _ in range(rounds):
            for size in sizes:
                graph.reset_stats()
                wall, cpu = timed(lambda n=names[size]: _quiet(poller.poll(n)))
                walls[size].append(wall)
                cpus[size].append(cpu)
                asked[size].append(graph.stats["requests"])
        print(f"--- graph: a poll with nothing new, {rounds} rounds, medians ---")
        empty = min(sizes)
        for size in sizes:
            wall, cpu = statistics.median(walls[size]), statistics.median(cpus[size])
            extra_wall = wall - statistics.median(walls[empty])
            extra_cpu = cpu - statistics.median(cpus[empty])
            print(
                f"{size:>7} kept: {1000 * wall:7.1f} ms wall, extra {1000 * extra_wall:6.1f} ms "
                f"wall, {1000 * extra_cpu:6.1f} ms CPU; requests per poll: "
                f"{min(asked[size])}-{max(asked[size])}"
            )
        store.engine.dispose()


def _graph_mailbox(
    store: Store, graph: GraphEmulator, root: Path, tenant: str, base: str, size: int
) -> str:
    """A Graph mailbox of ``size`` messages, every one recorded as imported."""
    name = f"graph{size}"
    address = f"{name}@contoso.onmicrosoft.com"
    graph.add_mailbox(address)
    box = graph.store.mailbox(address)
    assert box is not None
    inbox = box.folder("inbox")
    assert inbox is not None
    ids = [graph.store.deliver(box, message(n), inbox).immutable_id for n in range(size)]
    apply_document(
        store,
        {
            "authorization_servers": [microsoft_at(graph.idp.base_url)],
            "outputs": [{"name": "out", "type": "folder", "path": str(root / "graph-out")}],
            "mailboxes": [
                {
                    "name": name,
                    "protocol": "graph",
                    "graph_url": base,
                    "username": address,
                    "output": "out",
                    "after_import": "keep",
                    "oauth": {
                        "grant_type": "client_credentials",
                        "tenant_id": tenant,
                        "client_id": GRAPH_APP,
                        "client_secret": GRAPH_SECRET,
                    },
                }
            ],
        },
        {},
    )
    TokenManager(store).access_token(name)
    _record(store, name, [ImportEntry(graph_key(i), {"id": i}) for i in ids])
    return name


def _protocol(
    protocol: str,
    sizes: list[int],
    rounds: int,
    store: Store,
    dovecot: Dovecot,
    base: str,
    tenant: str,
    root: Path,
) -> None:
    names: dict[int, str] = {}
    for size in sizes:
        user = f"{protocol}{size}@{DOMAIN}"
        name = user.split("@")[0]
        names[size] = name
        dovecot.add_delegate(DAEMON_APP, user)
        dovecot.create_folder(user, "INBOX")
        started = time.perf_counter()
        dovecot.deliver_many(user, (message(n) for n in range(size)))
        port = dovecot.imap_port if protocol == "imap" else dovecot.pop3_port
        configure(store, root, base, tenant, protocol, port, user)
        token = TokenManager(store).access_token(name)
        if protocol == "imap":
            record_imap(store, dovecot, name, user, size)
        else:
            record_pop3(store, name, pop3_uidls(dovecot, user, token))
        seconds = time.perf_counter() - started
        print(f"{name}: {size} messages seeded and recorded in {seconds:.1f} s")
    poller = Poller(store, root / "home")
    print(f"--- {protocol}: first poll (IMAP: no checkpoint yet, the whole folder listed) ---")
    for size in sizes:
        wall, cpu = timed(lambda n=names[size]: _quiet(poller.poll(n)))
        print(f"{size:>7} kept: {1000 * wall:8.1f} ms wall {1000 * cpu:8.1f} ms CPU")
    walls: dict[int, list[float]] = {s: [] for s in sizes}
    cpus: dict[int, list[float]] = {s: [] for s in sizes}
    selects: dict[int, list[float]] = {s: [] for s in sizes}
    wires: dict[int, Wire] = {}
    for _ in range(rounds):
        for size in sizes:
            if protocol == "imap":
                token = TokenManager(store).access_token(names[size])
                selects[size].append(examine(dovecot, f"{names[size]}@{DOMAIN}", token))
            wire = wires[size] = Wire()
            counted = Poller(store, root / "home", source_factory=wire)
            wall, cpu = timed(lambda n=names[size], p=counted: _quiet(p.poll(n)))
            walls[size].append(wall)
            cpus[size].append(cpu)
    print(f"--- {protocol}: a poll with nothing new, {rounds} rounds, medians ---")
    empty = min(sizes)
    for size in sizes:
        wall, cpu = statistics.median(walls[size]), statistics.median(cpus[size])
        extra_wall = wall - statistics.median(walls[empty])
        extra_cpu = cpu - statistics.median(cpus[empty])
        per = f" ({1e6 * extra_cpu / size:.2f} µs CPU per kept message)" if size else ""
        print(
            f"{size:>7} kept: {1000 * wall:7.1f} ms wall, extra {1000 * extra_wall:6.1f} ms wall, "
            f"{1000 * extra_cpu:6.1f} ms CPU{per}; {wires[size].received} bytes from the server "
            f"after SELECT; commands then: {' '.join(wires[size].commands)}"
        )
    if protocol == "imap":
        print("--- imap: Dovecot's EXAMINE alone (a raw session; the server's part) ---")
        for size in sizes:
            took = statistics.median(selects[size])
            extra = took - statistics.median(selects[empty])
            print(f"{size:>7} kept: {1000 * took:7.1f} ms, extra {1000 * extra:6.1f} ms")
    if protocol == "pop3":
        _screening(store, dovecot, names, sizes)


def examine(dovecot: Dovecot, user: str, token: str) -> float:
    """Seconds Dovecot takes to answer ``EXAMINE INBOX`` in a session of its own."""
    with imaplib.IMAP4("127.0.0.1", dovecot.imap_port, timeout=60) as imap:
        imap.authenticate("XOAUTH2", lambda _challenge: xoauth2(user, token))
        started = time.perf_counter()
        imap.select("INBOX", readonly=True)
        return time.perf_counter() - started


def _screening(store: Store, dovecot: Dovecot, names: dict[int, str], sizes: list[int]) -> None:
    """The UIDL answer screened against the store on its own (the answer read from the
    server is not in it), before and after, in turn in the same run: before, the answer read
    line by line and keyed, and the mailbox's keys loaded (one query) and compared as sets;
    after, the answer read as one text and its beginning known by the digest the polls left
    (engine.listing_digest), nothing loaded."""
    print("--- pop3: screening the UIDL answer against the store, before | after ---")
    for size in sizes:
        if not size:
            continue
        token = TokenManager(store).access_token(names[size])
        lines = pop3_uidls(dovecot, f"{names[size]}@{DOMAIN}", token)
        answer = b"".join(line + b"\r\n" for line in lines)
        spent: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(9):
            for after in (False, True):
                statuses = Statuses(store, names[size], whole_listing=after)
                started = time.process_time()  # CPU time: the machine may be shared
                keys = screen(answer).keys if after else _read(answer.splitlines()).keys
                known = statuses.imported(keys)
                new = [k for k in keys if k not in known] if len(known) < len(keys) else []
                spent[after].append(time.process_time() - started)
                if new or statuses.skipped != size:
                    raise SystemExit(f"screening found {len(new)} new, {statuses.skipped} kept")
        before, after_ = (statistics.median(spent[a]) for a in (False, True))
        print(
            f"{size:>7} kept: before {1e3 * before:6.1f} ms CPU, {1e6 * before / size:.2f} µs"
            f" per kept message | after {1e3 * after_:6.1f} ms CPU, {1e6 * after_ / size:.2f}"
            " µs per kept message"
        )
    reference = time.process_time()
    sum(range(10_000_000))
    print(f"(this machine now: sum(range(10**7)) took {time.process_time() - reference:.2f} s CPU)")


def _quiet(result: Any) -> None:
    if result.error or result.imported:
        raise SystemExit(f"a poll with nothing new did something: {result}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="0,10000,50000")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--protocols", default="imap,pop3,graph")
    arguments = parser.parse_args()
    run(
        [int(s) for s in arguments.sizes.split(",")],
        arguments.rounds,
        arguments.protocols.split(","),
    )
