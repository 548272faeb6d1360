"""The import runtime owns what an importing process holds: the folder output's writer
processes (ended by ``close``, and at once when their parent is killed) and the interpreter's
switch interval; the web application builds its state when it is made and closes it when it
stops."""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import time
import weakref
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mailintake.engine.runtime import SWITCH_INTERVAL, ImportRuntime
from mailintake.settings import Settings
from mailintake.sinks.writers import PARALLEL_FROM
from mailintake.sources.base import Fetched, SourceItem
from mailintake.sources.memory import MemorySource
from mailintake.store.repo import Store
from mailintake.web.api.oauth import Flows
from mailintake.web.app import create_app
from mailintake.web.deps import Services
from tests.support.memory import filled, message, poller, setup


def running(pid: int) -> bool:
    """The process is there and not a zombie (one whose parent has not reaped it yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def gone_within(pids: Iterable[int], seconds: float) -> list[int]:
    """The processes still running after ``seconds``."""
    deadline = time.monotonic() + seconds
    left = [p for p in pids if running(p)]
    while left and time.monotonic() < deadline:
        time.sleep(0.02)
        left = [p for p in left if running(p)]
    return left


def worker_pids(runtime: ImportRuntime) -> list[int]:
    pool = runtime.writers.get()
    assert pool is not None
    # Two tasks at once: a pool that starts its processes on demand starts both (one task
    # at a time may be served by the first alone).
    busy = [pool.submit(time.sleep, 0.5) for _ in range(2)]
    assert pool.submit(os.getpid).result(timeout=30) != os.getpid()
    for task in busy:
        task.result(timeout=30)
    pids = list(pool._processes)  # the processes under test
    assert len(pids) == 2
    assert all(running(p) for p in pids)
    return pids


def test_closing_the_runtime_ends_its_writer_processes() -> None:
    runtime = ImportRuntime(switch_interval=None, workers=2)
    with runtime:
        pids = worker_pids(runtime)
    assert gone_within(pids, 0) == []  # close waited for them
    with runtime:  # a closed runtime starts its writers again when asked
        again = worker_pids(runtime)
    assert set(again).isdisjoint(pids)
    assert gone_within(again, 0) == []


def test_writers_start_only_for_a_batch_large_enough_for_them(
    store: Store, home: Path, tmp_path: Path
) -> None:
    """A pass with fewer messages than the writers take (PARALLEL_FROM), the usual poll of a
    quiet mailbox, writes them itself and starts no process; one with a batch that large
    starts them before the batch is fetched, and they write it."""
    out = tmp_path / "capture"
    setup(store, out)
    started_at_fetch: list[bool] = []

    with ImportRuntime(switch_interval=None, workers=2) as runtime:

        class Watched(MemorySource):
            def fetch(self, items: Sequence[SourceItem]) -> Iterator[tuple[SourceItem, Fetched]]:
                started_at_fetch.append(runtime.writers.started)
                return super().fetch(items)

        few = filled({n: message(n) for n in range(1, PARALLEL_FROM)})
        result = poller(store, home, few, Watched, runtime=runtime).poll("invoices")
        assert (result.imported, result.error) == (PARALLEL_FROM - 1, None)
        assert started_at_fetch == [False]
        assert not runtime.writers.started

        many = filled({n: message(n) for n in range(1, 3 * PARALLEL_FROM)})
        result = poller(store, home, many, Watched, runtime=runtime).poll("invoices")
        assert (result.imported, result.skipped) == (2 * PARALLEL_FROM, PARALLEL_FROM - 1)
        assert started_at_fetch == [False, True]
        assert runtime.writers.started
    assert len(list(out.glob("invoices/*/*/metadata.json"))) == 3 * PARALLEL_FROM - 1


def test_writers_that_cannot_start_leave_the_writing_to_the_importing_process(
    tmp_path: Path,
) -> None:
    """Under a temporary folder too long for the writers' fork server (its socket's path may
    have 107 bytes), a large batch is written whole by the importing process, and a warning
    says why and what to change. A new interpreter: multiprocessing keeps its temporary
    folder for the life of a process."""
    long = tmp_path / ("t" * 100)
    long.mkdir()
    out = tmp_path / "out"
    script = (
        "import sys; from pathlib import Path\n"
        "from mailintake.engine.runtime import ImportRuntime\n"
        "from mailintake.sinks.base import Delivery, Receipt\n"
        "from tests.support.memory import message\n"
        "with ImportRuntime(workers=2) as runtime:\n"
        "    sink = runtime.build_sink(None, Path(sys.argv[1]))\n"
        "    batch = [\n"
        "        Delivery('invoices', 'imap', f'memory-{n}', {'uid': n}, message(n), None)\n"
        "        for n in range(20)\n"
        "    ]\n"
        "    sink.expect(len(batch))\n"
        "    results = sink.deliver(batch)\n"
        "    assert all(isinstance(r, Receipt) for r in results), results\n"
        "    assert not runtime.writers.started\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "TMPDIR": str(long)},
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 0, done.stderr
    assert len(list(out.glob("**/metadata.json"))) == 20
    said = done.stdout + done.stderr
    assert "writers.unavailable" in said, said
    assert "AF_UNIX path too long" in said, said
    assert "set TMPDIR to a shorter folder" in said, said


def test_writer_processes_end_at_once_when_their_parent_is_killed(tmp_path: Path) -> None:
    script = (
        "import os, sys, time\n"
        "from mailintake.engine.runtime import ImportRuntime\n"
        "runtime = ImportRuntime(workers=2).start()\n"
        "pool = runtime.writers.get()\n"
        "assert pool.submit(os.getpid).result(timeout=30) != os.getpid()\n"
        "from multiprocessing import forkserver\n"
        "print(forkserver._forkserver._forkserver_pid, *pool._processes, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=tmp_path
    )
    try:
        assert parent.stdout is not None
        pids = [int(p) for p in parent.stdout.readline().split()]
        assert len(pids) == 3  # the server the workers are forked from, and two workers
        assert all(running(p) for p in pids)
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        assert parent.stdout is not None
        parent.stdout.close()
    assert gone_within(pids, 2.0) == []


def test_the_switch_interval_is_the_runtimes_while_it_runs() -> None:
    before = sys.getswitchinterval()
    sys.setswitchinterval(0.005)
    try:
        runtime = ImportRuntime(workers=1)
        assert sys.getswitchinterval() == pytest.approx(0.005)  # made, not started
        with runtime:
            assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL)
        assert sys.getswitchinterval() == pytest.approx(0.005)
    finally:
        sys.setswitchinterval(before)


class _Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only a garbage collection frees it


def test_what_the_process_holds_is_frozen_while_the_runtime_runs() -> None:
    """What the process holds at ``start`` is left out of garbage collections until
    ``close``: a cycle that was garbage already then is freed only after ``close``; one that
    becomes garbage meanwhile is freed as usual."""
    gc.disable()  # no collection but the test's own
    try:
        before = weakref.ref(_Node())
        with ImportRuntime(workers=1):
            during = weakref.ref(_Node())
            gc.collect()
            assert before() is not None
            assert during() is None
        gc.collect()
        assert before() is None
    finally:
        gc.enable()


def test_the_application_builds_its_state_up_front_and_closes_it(
    settings: Settings, store: Store
) -> None:
    served = settings.model_copy(update={"allowed_hosts": ("testserver",)})
    app = create_app(served, store=store, environ=dict)
    assert isinstance(app.state.flows, Flows)
    services = app.state.services
    assert isinstance(services, Services)
    assert services.tokens is not None
    assert services.tokens.store is store
    with TestClient(app):
        pids = worker_pids(services.runtime) if services.runtime.writers.workers >= 2 else []
    assert gone_within(pids, 0) == []


def test_an_application_that_opens_its_store_closes_it_with_its_tokens(
    settings: Settings,
) -> None:
    app = create_app(settings.model_copy(update={"allowed_hosts": ("testserver",)}))
    services = app.state.services
    assert services.tokens is None  # no store yet: it is opened when the application starts
    with TestClient(app):
        assert services.store is not None
        assert services.tokens is not None
        assert services.tokens.store is services.store
    assert (services.store, services.tokens) == (None, None)
