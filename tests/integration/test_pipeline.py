"""The import pipeline with the memory source (mailintake.sources.memory) and the real
folder output: nothing lost, nothing written twice, whatever fails where."""

from __future__ import annotations

import ctypes
import json
import mmap
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from mailintake.config.models import OutputSpec
from mailintake.engine.factories import build_sink
from mailintake.engine.poll import Poller
from mailintake.engine.runtime import SWITCH_INTERVAL, ImportRuntime
from mailintake.observability import metrics
from mailintake.sinks.base import Delivery, MessageSink, Receipt
from mailintake.sources.base import SourceItem
from mailintake.sources.memory import MemoryMailbox, MemorySource
from mailintake.status import mailbox_status
from mailintake.store.repo import Store
from tests.support.malformed import malformed
from tests.support.memory import FailingAcknowledge, dirs, filled, message, poller, setup

pytestmark = pytest.mark.both_databases


class CrashAfterDelivery:
    """An output that delivers, then "crashes" before the store records it."""

    def __init__(self, inner: MessageSink) -> None:
        self.inner = inner
        self.overlapping_batches = inner.overlapping_batches

    def deliver(self, batch: Sequence[Delivery]) -> list[Receipt | Exception]:
        self.inner.deliver(batch)
        raise KeyboardInterrupt("crash")

    def close(self) -> None:
        self.inner.close()


def test_import_writes_the_contract_layout_once(
    store: Store, home: Path, tmp_path: Path, box: MemoryMailbox
) -> None:
    out = tmp_path / "capture"
    setup(store, out)
    result = poller(store, home, box).poll("invoices")
    assert (result.imported, result.skipped, result.failed, result.error) == (3, 0, 0, None)
    found = dirs(out)
    assert [p.parent.name for p in found] == ["2026-11-23"] * 3
    first = found[0]
    assert (first / "message.eml").read_bytes() == box.messages[1]
    meta = json.loads((first / "metadata.json").read_text())
    assert meta["subject"] == "Invoice 1"
    assert meta["from"] == "Supplier <billing@supplier.example>"
    assert meta["internet_message_id"] == "<invoice-1@supplier.example>"
    assert meta["source"] == {"uid": 1}
    assert meta["size"] == len(box.messages[1])
    (attachment,) = meta["attachments"]
    assert attachment["filename"] == "../../invoice 1.pdf"
    assert attachment["path"] == "attachments/1_invoice 1.pdf"  # no path traversal
    assert (first / attachment["path"]).read_bytes().startswith(b"%PDF")
    assert box.seen == {1, 2, 3}
    again = poller(store, home, box).poll("invoices")
    assert (again.imported, again.skipped) == (0, 3)
    assert len(dirs(out)) == 3
    assert not list((out / ".incoming" / "invoices").iterdir())
    exposed = metrics.render().decode()
    assert 'mailintake_messages_total{mailbox="invoices",outcome="imported"}' in exposed
    assert 'mailintake_polls_total{mailbox="invoices",outcome="ok"}' in exposed


def resident_pages(path: Path) -> int:
    """How many pages of the file the kernel holds in memory (mincore(2) on a mapping)."""
    libc = ctypes.CDLL(None, use_errno=True)  # its own: the argument types set here stay here
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int]
    libc.mmap.argtypes += [ctypes.c_int, ctypes.c_long]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
    size = path.stat().st_size
    pages = -(-size // mmap.PAGESIZE)
    with path.open("rb") as file:
        address = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, file.fileno(), 0)
    assert address not in (None, ctypes.c_void_p(-1).value), ctypes.get_errno()
    try:
        vector = (ctypes.c_ubyte * pages)()
        assert libc.mincore(address, size, vector) == 0, ctypes.get_errno()
        return sum(v & 1 for v in vector)
    finally:
        libc.munmap(address, size)


@pytest.fixture
def on_disk() -> Iterator[Path]:
    """A folder on a disk: ``make test`` keeps the tests' temporary files in memory (TMPDIR
    on a tmpfs), where a file's data never leaves the page cache."""
    parent = Path("/var/tmp")
    folder = Path(
        tempfile.mkdtemp(prefix="mailintake-disk-", dir=parent if parent.is_dir() else None)
    )
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.parametrize("count", [3, 40])  # written here, and by the output's workers
def test_what_was_written_is_not_kept_in_memory(on_disk: Path, count: int) -> None:
    """Once a batch is on disk, its files leave the page cache: an import writes far more
    than anything reads back soon."""
    tmp_path = on_disk
    control = tmp_path / "control"
    control.write_bytes(b"x" * 65536)
    with control.open("rb") as file:
        os.fsync(file.fileno())
        os.posix_fadvise(file.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    if resident_pages(control):
        pytest.skip("this file system keeps file data in memory (tmpfs?)")
    out = tmp_path / "capture"
    batch = [
        Delivery("invoices", "imap", f"memory-{n}", {"uid": n}, message(n, b"%PDF" * 20000), None)
        for n in range(count)
    ]
    with ImportRuntime(switch_interval=None) as runtime:
        sink = runtime.build_sink(
            OutputSpec(name="capture", type="folder", path=str(out)), tmp_path
        )
        receipts = sink.deliver(batch)
        sink.close()
    files = [p for r in receipts if isinstance(r, Receipt) for p in Path(r.location).rglob("*")]
    files = [p for p in files if p.is_file()]
    assert len(files) == 3 * count  # message, metadata, one attachment
    deadline = time.monotonic() + 10  # the workers let go of a batch after it is delivered
    while (held := [p for p in files if resident_pages(p)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert held == []
    written = [Path(r.location) / "message.eml" for r in receipts if isinstance(r, Receipt)]
    assert [p.read_bytes() for p in written] == [d.raw for d in batch]


def test_batches_stop_at_a_size_as_well(store: Store, home: Path, tmp_path: Path) -> None:
    """A batch is held in memory while it is fetched and written: a mailbox of large
    messages makes smaller batches, not batches of gigabytes."""
    box = filled({i: message(i, b"%PDF" * 1000) for i in range(1, 11)})
    fetched: list[int] = []

    class Recording(MemorySource):
        def fetch(self, items: Sequence[SourceItem]) -> Iterator[tuple[SourceItem, bytes]]:
            fetched.append(len(items))
            return super().fetch(items)

    def source(*_args: Any, **_options: Any) -> MemorySource:
        return Recording(box)

    setup(store, tmp_path / "capture")
    most = max(len(raw) for raw in box.messages.values()) * 3
    result = Poller(store, home, source_factory=source, batch_bytes=most).poll("invoices")
    assert (result.imported, result.error) == (10, None)
    assert fetched == [3, 3, 3, 1]
    assert box.seen == set(range(1, 11))


def test_what_a_killed_import_half_wrote_is_cleared(
    store: Store, home: Path, tmp_path: Path, box: MemoryMailbox
) -> None:
    out = tmp_path / "capture"
    setup(store, out)
    half = out / ".incoming" / "invoices" / "memory-1.0badf00d"
    (half / "attachments").mkdir(parents=True)
    (half / "message.eml").write_bytes(box.messages[1][:10])
    result = poller(store, home, box).poll("invoices")
    assert (result.imported, result.error) == (3, None)
    assert not half.exists()
    assert [(p / "message.eml").read_bytes() for p in dirs(out)] == list(box.messages.values())


def test_a_crash_before_the_after_import_action(
    store: Store, home: Path, tmp_path: Path, box: MemoryMailbox
) -> None:
    out = tmp_path / "capture"
    setup(store, out)
    result = poller(store, home, box, FailingAcknowledge).poll("invoices")
    assert result.error is not None
    assert box.seen == set()  # recorded, delivered, not acknowledged
    again = poller(store, home, box).poll("invoices")
    assert again.error is None
    assert (again.imported, again.skipped) == (0, 3)
    assert box.seen == {1, 2, 3}  # acknowledged on restart
    assert len(dirs(out)) == 3


def test_a_crash_between_delivery_and_record(
    store: Store, home: Path, tmp_path: Path, box: MemoryMailbox
) -> None:
    out = tmp_path / "capture"
    setup(store, out)

    def crashing(output: OutputSpec | None, home_dir: Path) -> MessageSink:
        return CrashAfterDelivery(build_sink(output, home_dir))

    with pytest.raises(KeyboardInterrupt):
        poller(store, home, box, sink_factory=crashing).poll("invoices")
    assert len(dirs(out)) == 3  # delivered, but not recorded
    with store.begin() as repo:  # the crashed worker's lease ends
        from mailintake.store import leases

        assert leases.holder(repo.conn, "invoices") is None  # released as the pass ended
    result = poller(store, home, box).poll("invoices", owner="restarted")
    assert (result.imported, result.error) == (3, None)
    assert len(dirs(out)) == 3  # the same keys: no second copy
    assert box.seen == {1, 2, 3}


def test_too_large_and_refused_messages_stay_and_show(
    store: Store, home: Path, tmp_path: Path, box: MemoryMailbox
) -> None:
    out = tmp_path / "capture"
    setup(store, out)
    box.messages[9] = message(9, b"x" * 5000)
    result = poller(store, home, box, max_size=4000).poll("invoices")
    assert (result.imported, result.failed) == (3, 1)
    assert 9 not in box.seen
    with store.read() as repo:
        (row,) = mailbox_status(repo)
    assert (row["imported"], row["failed"]) == (3, 1)


def test_an_unwritable_output_keeps_everything_on_the_server(
    store: Store, home: Path, tmp_path: Path, box: MemoryMailbox
) -> None:
    out = tmp_path / "capture"
    setup(store, out)
    out.mkdir()
    (out / ".incoming").write_text("not a folder")  # the output cannot stage anything
    result = poller(store, home, box).poll("invoices")
    assert (result.imported, result.failed) == (0, 3)
    assert box.seen == set()
    (out / ".incoming").unlink()
    retried = poller(store, home, box).poll("invoices")
    assert (retried.imported, retried.failed) == (3, 0)
    assert box.seen == {1, 2, 3}


def test_malformed_messages_import_whole_with_their_defects(
    store: Store, home: Path, tmp_path: Path
) -> None:
    cases = malformed()
    box = filled(dict(enumerate(cases.values(), start=1)))
    out = tmp_path / "capture"
    setup(store, out)
    result = poller(store, home, box).poll("invoices")
    assert (result.imported, result.failed, result.error) == (len(cases), 0, None)
    written = {json.loads((p / "metadata.json").read_text())["source"]["uid"]: p for p in dirs(out)}
    assert len(written) == len(cases)
    defects = {}
    for uid, (label, raw) in enumerate(cases.items(), start=1):
        folder = written[uid]
        assert (folder / "message.eml").read_bytes() == raw, label  # the server's bytes
        defects[label] = json.loads((folder / "metadata.json").read_text()).get("defects", [])
    assert defects["broken boundary"], defects
    assert any(d.startswith("Subject:") for d in defects["bad encodings"])
    assert any(d.startswith("Date:") for d in defects["bad encodings"])
    nested = written[list(cases).index("nested rfc822") + 1]
    assert (nested / "attachments" / "1_i.pdf").read_bytes() == b"%PDF inner"
    assert box.seen == set(box.messages)


@pytest.mark.parametrize("delay", [0.0, 0.02, 0.05, 0.1, 0.2])
def test_a_pass_that_ends_at_once_ends_cleanly(tmp_path: Path, delay: float) -> None:
    """The output's worker processes start in the background when a large batch is listed;
    a program whose pass ends while they are starting (every message of the batch already
    imported, or gone) still exits at once, and quietly."""
    script = (
        "import sys, time; from pathlib import Path\n"
        "from mailintake.engine.runtime import ImportRuntime\n"
        "from mailintake.sinks.writers import PARALLEL_FROM\n"
        "with ImportRuntime(workers=2) as runtime:\n"
        "    sink = runtime.build_sink(None, Path(sys.argv[1]))\n"
        "    sink.expect(PARALLEL_FROM)\n"
        "    assert runtime.writers.started\n"
        "    time.sleep(float(sys.argv[2]))\n"
        "    sink.close()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "out"), str(delay)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, "")


def test_constructing_a_poller_leaves_the_interpreter_alone(store: Store, home: Path) -> None:
    """Only a command that owns its process (poll, worker, serve) shortens the interpreter's
    switch interval, with the runtime it starts, and closing that runtime puts it back;
    building a Poller (a web request, a test) or polling without one changes nothing."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(0.005)
    try:
        poller = Poller(store, home, source_factory=lambda *a, **k: MemorySource(MemoryMailbox()))
        poller.poll("nothing-here")
        assert sys.getswitchinterval() == pytest.approx(0.005)
        with ImportRuntime():
            assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL)
        assert sys.getswitchinterval() == pytest.approx(0.005)
        sys.setswitchinterval(0.0001)  # a shorter one set elsewhere stays
        with ImportRuntime():
            assert sys.getswitchinterval() == pytest.approx(0.0001)
        assert sys.getswitchinterval() == pytest.approx(0.0001)
    finally:
        sys.setswitchinterval(before)
