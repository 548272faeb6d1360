"""The folder output's worker processes (``WriterPool``): started from a fork server
without the program's main module, ending with the process that started them however it
ends, and owned by the import runtime (engine.runtime). What they run, and the system calls
that write a message's directory, are in sinks/writers.py."""

from __future__ import annotations

import concurrent.futures
import contextlib
import gc
import multiprocessing
import os
import select
import signal
import sys
import threading
import types
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from multiprocessing.context import ForkServerContext
from multiprocessing.synchronize import Barrier

from mailintake.sinks import writers

_MAIN_SWAP = threading.Lock()


def _start_worker(parent: int, everyone: Barrier) -> None:
    """In a worker: die with the process that forked it, collect cyclic garbage rarely
    (reading a message makes many short-lived objects, freed as they go), keep the memory
    it frees, follow the importing process, and wait until the pool's other workers have
    started too.

    The wait makes the pool start all of them: ProcessPoolExecutor starts a process for a
    task only when none is idle, and a worker that has started and run its first task is
    idle, so the tasks that start the pool (``WriterPool._start``) would otherwise start as
    few as one process on a busy machine (measured: fewer than four in 15 of 30 starts of
    four), and the rest would start in the middle of the first import."""
    _die_with_parent(parent)
    gc.set_threshold(50_000, 20, 20)
    _keep_freed_memory()
    _follow(parent)
    with contextlib.suppress(threading.BrokenBarrierError):  # one failed to start: go on
        everyone.wait(_EVERYONE_STARTED)


# How long a started worker waits for the others (a pool whose start failed is shut down).
_EVERYONE_STARTED = 30.0


# glibc's mallopt(3) parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def _keep_freed_memory() -> None:
    """In a worker (glibc): keep the memory of the messages it has written for the next
    ones. By default glibc hands a large block (a message read whole) back to the kernel
    when it is freed, and the next message takes it again, a page fault for every 4 KiB
    of it: measured, a fifth of a worker's time in the kernel. Messages up to
    ``PARALLEL_UP_TO`` come to workers, so blocks up to that size are taken from the heap
    and the heap is kept up to a few of them; what a worker holds stays bounded."""
    mallopt = getattr(writers.libc, "mallopt", None)
    if mallopt is None:  # not glibc
        return
    mallopt(_M_MMAP_THRESHOLD, writers.PARALLEL_UP_TO + (1 << 20))
    mallopt(_M_TRIM_THRESHOLD, 4 * writers.PARALLEL_UP_TO)


_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _die_with_parent(importer: int) -> None:
    """In a worker (Linux): the kernel kills it (SIGKILL) the moment the process that forked
    it (the pool's fork server, itself ending with the importing process) ends, however that
    ends; nothing in this process needs to run for that. The parent may have ended before
    this took effect: then this process was handed to init (or a subreaper) and the
    importing process is gone; it ends here."""
    if not sys.platform.startswith("linux"):
        return
    forked_by = os.getppid()
    if writers.libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        return  # not allowed here: _follow still ends it
    if os.getppid() != forked_by or forked_by == 1 or not _alive(importer):
        os._exit(0)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _follow(parent: int) -> None:
    """In a worker: end when the importing process ends, even when it was killed (SIGKILL
    runs no clean-up, and a worker would otherwise wait for work for ever)."""

    def wait() -> None:
        try:
            fd = os.pidfd_open(parent)
        except OSError:  # already gone
            os._exit(0)
        select.select([fd], [], [])
        os._exit(0)

    threading.Thread(target=wait, name="follow-parent", daemon=True).start()


def _ready() -> None:
    return None


class WriterPool:
    """The worker processes that read and write messages (forkserver: safe with threads),
    owned by whoever made it (engine.runtime.ImportRuntime). ``warm`` starts them in the
    background (it takes a while: docs/importing.md, "Speed"), so that they are ready when
    the first batch has arrived; otherwise ``get`` starts them at first use. ``close`` ends
    them and waits for them; a worker also ends at once when the process that started the
    pool ends, even killed (``_follow``). Closed, the pool starts again at its next use."""

    def __init__(
        self, workers: int | None = None, *, context: ForkServerContext | None = None
    ) -> None:
        """``context``: what the processes start from (multiprocessing's forkserver)."""
        self.workers = workers if workers is not None else writers.default_workers()
        self._context = context or multiprocessing.get_context("forkserver")
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None
        self._starter: threading.Thread | None = None

    @property
    def started(self) -> bool:
        """Its processes are started, or starting (until ``close``)."""
        with self._lock:
            return self.workers >= 2 and (self._pool is not None or self._starter is not None)

    def warm(self) -> None:
        """Start the worker processes in the background (once until ``close``)."""
        if self.workers < 2:
            return
        with self._lock:
            if self._starter is not None or self._pool is not None:
                return
            self._starter = threading.Thread(target=self._start, name="start-writers", daemon=True)
            self._starter.start()

    def get(self) -> ProcessPoolExecutor | None:
        """The started pool (None: one CPU, everything is written in the importing process)."""
        if self.workers < 2:
            return None
        self._started()
        with self._lock:
            if self._pool is not None:
                return self._pool
        self._start()
        return self._pool

    def close(self) -> None:
        """End the worker processes and wait for them."""
        self._started()
        with self._lock:
            pool, self._pool, self._starter = self._pool, None, None
        if pool is not None:
            pool.shutdown(wait=True)  # what was handed over is done first

    def _started(self) -> None:
        """Wait until a background start is over: a worker process that started while the
        pool was shutting down would never be told to stop, and its parent would wait for it
        for ever."""
        starter = self._starter
        if starter is not None and starter is not threading.current_thread():
            starter.join()

    def _start(self) -> None:
        with self._lock:
            if self._pool is not None or self.workers < 2:
                return
            context = self._context
            # The server the workers are forked from loads these modules once for all of them.
            context.set_forkserver_preload([writers.__name__, __name__])
            pool = ProcessPoolExecutor(
                self.workers,
                mp_context=context,
                initializer=_start_worker,
                initargs=(os.getpid(), context.Barrier(self.workers)),
            )
            try:
                with _without_main():  # the processes start here, one per submission
                    started = [pool.submit(_ready) for _ in range(self.workers)]
            except OSError as exc:
                pool.shutdown(wait=False, cancel_futures=True)
                self.workers = 1  # from now on, everything is written in the importing process
                _unavailable(exc)
                return
            self._pool = pool
        # Until a process has read what it was started with, it must not be asked to stop
        # (it would find its parent's end of the pipe gone). A pool that broke meanwhile is
        # reported by its first use.
        concurrent.futures.wait(started)


def _unavailable(exc: OSError) -> None:
    """Say that the writer processes could not start, what it means and what to do."""
    # Imported here: the writers' fork server loads this module, and logging (structlog)
    # would add a tenth of a second to each start of it.
    from mailintake.observability.logging import get_logger

    get_logger(__name__).warning("writers.unavailable", error=str(exc), hint=_hint(exc))


def _hint(exc: OSError) -> str:
    """What a failed start of the writer processes means for the import, and what to do."""
    said = "the importing process writes every message itself (slower for large batches)"
    if "AF_UNIX path too long" in str(exc):
        # The fork server listens on a socket in a folder of TMPDIR; a socket's path has at
        # most 107 bytes (Linux), and Python adds about 40 to TMPDIR's.
        return f"{said}; set TMPDIR to a shorter folder (for example /tmp) to have them"
    return said


@contextlib.contextmanager
def _without_main() -> Iterator[None]:
    """Start worker processes without the program's main module. multiprocessing would run
    it again in each worker (for ``mailintake``, the whole command line with everything it
    loads, at the start of an import); they need only this module. The forkserver's preload
    of ``__main__`` would load it once, but Python 3.11 never hands the server the main
    module's path, and a start method has no other way to leave it out. Only a pool's start
    does this, while it launches its processes."""
    with _MAIN_SWAP:
        main = sys.modules["__main__"]
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            yield
        finally:
            sys.modules["__main__"] = main
